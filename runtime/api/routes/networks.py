"""Network routes: `/networks/...` (bridge networks; host and none are listed, not made)."""

from runtime.api import bodycheck
from runtime.api.backend.networks import NetworkBackend
from runtime.errors import InvalidParameter


def list_(req, v):
    """`GET /networks?filters=`: Network objects."""
    return 200, req.backend.network_list(filters=req.filters())


def inspect(req, v):
    """`GET /networks/{id}`."""
    return 200, req.backend.network_inspect(v["id"])


def create(req, v):
    """`POST /networks/create` {Name, Driver, Internal, Attachable, IPAM{Config}, Options, Labels,
    EnableIPv6}: 201 {"Id", "Warning"}."""
    body = bodycheck.check(req.json_object("network config"), bodycheck.NETWORK_CREATE, "CreateRequest")
    return 201, req.backend.network_create(body)


def remove(req, v):
    """`DELETE /networks/{id}`: 409 while a container is attached, 403 for a predefined one."""
    req.backend.network_remove(v["id"])
    return 204, None


def connect(req, v):
    """`POST /networks/{id}/connect` {Container, EndpointConfig}."""
    body = bodycheck.check(req.json_object("connect request"), bodycheck.NETWORK_CONNECT,
                           "NetworkConnectRequest")
    if not body.get("Container"):
        raise InvalidParameter("no container given: say which container to connect")
    req.backend.network_connect(v["id"], body["Container"], body.get("EndpointConfig") or {})
    return 200, None


def disconnect(req, v):
    """`POST /networks/{id}/disconnect` {Container, Force}."""
    body = bodycheck.check(req.json_object("disconnect request"), bodycheck.NETWORK_DISCONNECT,
                           "NetworkDisconnectRequest")
    if not body.get("Container"):
        raise InvalidParameter("no container given: say which container to disconnect")
    req.backend.network_disconnect(v["id"], body["Container"], bool(body.get("Force")))
    return 200, None


def prune(req, v):
    """`POST /networks/prune?filters=`: {"NetworksDeleted": [...]}."""
    return 200, {"NetworksDeleted": req.backend.network_prune(filters=req.filters())}


BACKEND = NetworkBackend
ROUTES = [
    ("GET", "/networks", list_),
    ("POST", "/networks/create", create),
    ("POST", "/networks/prune", prune),
    ("GET", "/networks/{id}", inspect),
    ("DELETE", "/networks/{id}", remove),
    ("POST", "/networks/{id}/connect", connect),
    ("POST", "/networks/{id}/disconnect", disconnect),
]

"""Swarm endpoints: berthd is never part of a swarm, so they answer as a dockerd outside one
(503 "not a swarm manager"), which clients such as docker-py's `leave_swarm(force=True)` expect."""

NOT_IN_SWARM = ("This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" "
                "to connect this node to swarm and try again.")


def not_in_swarm(req, v):
    """503 for any swarm call."""
    req.body.read()
    return 503, {"message": NOT_IN_SWARM}


BACKEND = type(None)  # nothing behind them
ROUTES = [(method, path, not_in_swarm) for method, path in (
    ("GET", "/swarm"), ("POST", "/swarm/init"), ("POST", "/swarm/join"), ("POST", "/swarm/leave"),
    ("POST", "/swarm/update"), ("GET", "/swarm/unlockkey"), ("POST", "/swarm/unlock"),
    ("GET", "/nodes"), ("GET", "/services"), ("POST", "/services/create"), ("GET", "/tasks"),
    ("GET", "/secrets"), ("POST", "/secrets/create"), ("GET", "/configs"), ("POST", "/configs/create"))]

"""Pull, push and login against registries (runtime/registry), for the image and system
services.

Settings come from daemon.json (`config`, updated in place on SIGHUP): `registry-mirrors`,
`insecure-registries`, `max-concurrent-downloads` (3), `max-concurrent-uploads` (5). Keys berthd's daemon.json
refuses, for an engine built in-process (tests): `certs-dir` (else $BERTH_CERTS_DIR, else
/etc/berth/certs.d), `hub-url` (else $BERTH_HUB_URL, else https://registry-1.docker.io) and
`upload-chunk-size` (bytes per PATCH for big blobs, 32 MiB).

The registry client (and with it http.client, ssl and the email package: 2.4 MB on Python 3.6)
is imported by the first pull, push, login or registry setting asked for, not at the start.
"""

import json
import os

from runtime import TYPE_CHECKING
from runtime.errors import InvalidParameter, Unauthorized
from runtime.registry import names
from runtime.registry.sources import BlobSources

if TYPE_CHECKING:
    from runtime.registry.endpoints import RegistryConfig  # noqa: F401


class RegistryService(object):
    """Pulls into and pushes from `store` (an ImageStore); `config` is daemon.json's (the same
    dict the daemon updates on SIGHUP); where blobs came from is kept under data_root."""

    def __init__(self, data_root, config, store, events=None):
        # type: (str, dict, object, object) -> None
        self.events = events  # runtime.events.EventLog: pull
        self.data_root = data_root
        self.config = config
        self.store = store
        self._registry_config = (None, None)  # type: tuple

    @property
    def registry_config(self):
        # type: () -> RegistryConfig
        """The parsed registry settings, kept (it caches TLS contexts) until the daemon's
        config changes them (SIGHUP reload updates self.config in place)."""
        from runtime.registry.endpoints import RegistryConfig
        key = json.dumps([self.config.get(k) for k in RegistryConfig.KEYS], sort_keys=True)
        if self._registry_config[0] != key:
            self._registry_config = (key, RegistryConfig(self.config))
        return self._registry_config[1]

    def blob_sources(self):
        # type: () -> BlobSources
        """Which repositories each blob came from or went to (cross-repository mounts)."""
        return BlobSources(os.path.join(self.data_root, "registry", "blob-sources.json"))

    def pull(self, name, tag=None, auth=None, platform=None, progress=None):
        # type: (str, str, dict, str, object) -> str
        """Pull name[:tag] (tag may be a digest) into the store; returns the image id."""
        from runtime.registry.auth import Credentials
        from runtime.registry.pull import Puller
        ref = names.parse(name, tag)
        puller = Puller(self.store, self.registry_config, Credentials.from_auth(auth), progress,
                        self.config.get("max-concurrent-downloads", 3), self.blob_sources())
        image_id = puller.pull(ref, platform)
        if self.events is not None:
            self.events.emit("image", "pull", ref.familiar_tagged(), {"name": ref.familiar_tagged()})
        return image_id

    def push(self, name, tag=None, auth=None, progress=None):
        # type: (str, str, dict, object) -> str
        """Push name[:tag]; returns the manifest digest."""
        from runtime.registry.auth import Credentials
        from runtime.registry.push import Pusher
        ref = names.parse(name, tag)
        if not ref.tag:
            raise InvalidParameter("push needs a tag, not a digest: %s" % name)
        pusher = Pusher(self.store, self.registry_config, Credentials.from_auth(auth), progress,
                        self.config.get("max-concurrent-uploads", 5),
                        self.config.get("upload-chunk-size"), self.blob_sources())
        return pusher.push(ref)

    def login(self, auth):
        # type: (dict) -> dict
        """Check credentials against the registry in auth["serveraddress"] (Docker Hub when
        empty): a token for Bearer registries, GET /v2/ with Basic for the others."""
        from runtime.registry import session
        from runtime.registry.auth import Credentials
        auth = {k.lower(): v for k, v in (auth or {}).items()}
        creds = Credentials.from_auth(auth)
        if not creds:
            raise InvalidParameter("login needs a username and password")
        server = (auth.get("serveraddress") or "").split("://", 1)[-1].rstrip("/")
        if not server or server in ("index.docker.io/v1", "index.docker.io", "registry-1.docker.io"):
            server = names.HUB_DOMAIN
        ref = names.Reference(server.split("/", 1)[0], "login-probe", "latest")

        def check(repo):
            repo.ping()
            if repo.auth.scheme == "bearer":
                repo.auth.token([], fresh=True)
            elif repo.auth.scheme == "basic":
                resp = repo.send("GET", "/v2/")
                resp.read()
                if resp.status == 401:
                    raise Unauthorized("login to %s failed: unauthorized: incorrect username or "
                                       "password" % repo.endpoint.host)
                if resp.status != 200:
                    repo.fail(resp, "login to %s" % repo.endpoint.host)
            return None

        session.run(self.registry_config, ref, creds, check, push=True, action="login to %s" % ref.domain)
        return {"Status": "Login Succeeded", "IdentityToken": ""}

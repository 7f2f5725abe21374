"""runtime.registry: the OCI distribution API client (pull, push, login); see docs/registry.md.

names (references) -> endpoints (mirrors, insecure, TLS) -> session (try each endpoint) ->
client.Repository (HTTP API, auth via auth.py over transport.py) -> pull.Puller / push.Pusher
(orchestration into runtime.store, Docker progress messages). credentials.py is the CLI's
~/.berth/config.json store.
"""

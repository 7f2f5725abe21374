"""The interfaces the HTTP routes see, one per route table (moby's routers each hold one
backend): images, containers (with exec and commit), volumes, system. The engine's services
(runtime/services) implement them; a route knows nothing else of the engine.

Shapes: where a method returns a dict, it is the JSON object of the Docker Engine API
(moby api/swagger.yaml) for that call, e.g. `ContainerInspectResponse`, `ImageInspect`, `Volume`,
so the routes only serialise. Errors are raised as runtime.errors kinds (NotFound, Conflict,
InvalidParameter, NotModified...), never as HTTP codes.
"""

"""runtime.api.routes."""

"""runtime.registry."""

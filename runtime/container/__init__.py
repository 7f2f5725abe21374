"""runtime.container."""

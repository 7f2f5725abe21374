"""runtime.volumes."""

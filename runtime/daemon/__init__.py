"""runtime.daemon."""

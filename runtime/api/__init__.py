"""runtime.api."""

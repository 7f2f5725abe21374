"""The engine's backend methods, grouped by the interface they implement (runtime/api/backend.py).

Each module holds one mixin; runtime.engine.Engine composes them. A mixin's __init__ sets up
only its own part (e.g. the image store) from self.data_root and self.config.
"""

"""The engine's services, one per route table's interface (runtime/api/backend): images,
containers (with exec and commit), volumes, system; and the registry client they share.

Each receives what it depends on in its constructor; runtime.engine.Engine builds them.
"""

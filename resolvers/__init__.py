"""One package per external system, each declaring itself in its `system.py`; `systems.SYSTEMS`
is the tuple the app factory and the worker are built from."""

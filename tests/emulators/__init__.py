"""Upstream API emulators served over real HTTP on 127.0.0.1."""

"""Queries against qontract-server (app-interface desired state)."""

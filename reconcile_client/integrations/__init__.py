"""Reference integrations that reconcile through the qontract-gateway."""

"""qontract-server: app-interface desired state, federated behind the gateway."""

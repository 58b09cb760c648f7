"""HashiCorp Vault / OpenBao: KV v1 and v2 secrets for credentials and reconcilers."""

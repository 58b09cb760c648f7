"""Vault secrets against a real OpenBao dev server."""

"""Queries against a federating gateway's merged schema (qontract-server's plus live fields)."""

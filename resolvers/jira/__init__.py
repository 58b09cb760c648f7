"""Jira: issues and projects (REST v3)."""

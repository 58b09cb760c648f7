"""GitHub: org members, repo collaborators and OWNERS files (REST v3)."""

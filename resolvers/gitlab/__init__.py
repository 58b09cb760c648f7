"""GitLab: repository files, OWNERS, refs and project members of GitLab instances."""

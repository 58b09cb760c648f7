"""Slack: users, usergroups and channels of a workspace, and the writes reconcile needs."""

"""The notifier: posts what real runs changed (their events) to Slack channels and DMs."""

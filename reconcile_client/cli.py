"""`qontract-reconcile-api`: the integrations' command line."""

import click


@click.group()
def main() -> None:
    """Run qontract reconcile integrations that talk to the qontract-gateway."""

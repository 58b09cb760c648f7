"""`python -m reconcile_client`: the same as the `qontract-reconcile-api` command."""

from reconcile_client.cli import main

main()

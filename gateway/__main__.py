"""`python -m gateway`: the `qontract-gateway` command."""

from gateway.cli import main

main()

"""`python -m phonewagon_server`: the `phonewagon-server` command, for processes `serve` starts."""

from phonewagon_server.cli import main

main()

"""The `phonewagon` command (filled in by the client issue)."""


def main() -> None:
    raise SystemExit("phonewagon: the command line is being built")

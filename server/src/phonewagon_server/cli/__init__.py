"""`phonewagon-server`: serve the API and manage its data.

Every management command prints for people by default and one JSON object with `--json`.
"""

from __future__ import annotations

import click

from phonewagon_server import __version__
from phonewagon_server.cli import database, dni, imports, manage, numbers, serve, users, work


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="phonewagon-server")
def main() -> None:
    """Phonewagon call-tracking API server.

    Configure with flags or PHONEWAGON_* variables: PHONEWAGON_DATABASE_URL (default: the SQLite
    file phonewagon.db here), PHONEWAGON_PUBLIC_URL, PHONEWAGON_RATE_LIMIT (default 50/minute).
    """


main.add_command(serve.serve)
main.add_command(serve.demo)
main.add_command(work.work)
main.add_command(database.db)
main.add_command(manage.accounts)
main.add_command(manage.credentials)
main.add_command(manage.companies)
main.add_command(manage.campaigns)
main.add_command(numbers.numbers)
main.add_command(dni.dni)
main.add_command(users.users)
main.add_command(imports.calls)

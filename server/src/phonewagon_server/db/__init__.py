"""Storage: the only package that knows SQLite from PostgreSQL.

`open_database(url)` gives a `Database`; `with database.transaction() as tx:` gives a connection
whose work commits when the block ends (and rolls back if it raises). Query modules
(`accounts`, `companies`, `calls`) take that connection, so the caller owns the transaction.
"""

from phonewagon_server.db.engine import Connection, Database, check_reachable, open_database

__all__ = ["Connection", "Database", "check_reachable", "open_database"]

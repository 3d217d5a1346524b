"""Alembic's environment: ndex.server.migrate hands it a connection inside the one transaction of an upgrade.

Online only: `ndex upgrade --dry_run` prints the revisions instead of SQL. SQLite alters tables in batch
mode (copy, drop, rename), which its transactional DDL keeps atomic.
"""
from alembic import context

from ndex.server.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, transactional_ddl=True,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()

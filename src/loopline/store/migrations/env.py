"""Alembic environment. Loopline always runs migrations on a connection it already holds (and
has locked, see ``loopline.store.migrate``), so there is no offline mode and no URL handling."""

from __future__ import annotations

from alembic import context

from loopline.store.migrate import VERSION_TABLE
from loopline.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()

"""Alembic environment: the database URL comes from the settings, never from alembic.ini."""

from alembic import context
from sqlmodel import SQLModel

from trends_gql.core import models  # noqa: F401  (registers the tables)
from trends_gql.core.db import create_db_engine, created_on
from trends_gql.core.settings import get_settings

config = context.config
url = config.attributes.get("database_url") or get_settings().database_url


def run() -> None:
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=SQLModel.metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_db_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=SQLModel.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            include_object=created_on(connection.dialect.name),
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()

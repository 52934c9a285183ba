"""Alembic migrations, shipped as trends_gql.migrations."""

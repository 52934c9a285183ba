"""Alembic revisions (loaded by Alembic from this folder, never imported)."""

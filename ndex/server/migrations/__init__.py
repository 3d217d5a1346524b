"""Alembic revisions of the catalog's schema (see README.md here); run by ndex.server.migrate."""

"""ndex.sources (see ../shared/design/architecture.md)."""

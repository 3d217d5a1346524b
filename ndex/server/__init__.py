"""ndex.server (see ../shared/design/architecture.md)."""

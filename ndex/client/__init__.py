"""ndex.client (see ../shared/design/architecture.md)."""

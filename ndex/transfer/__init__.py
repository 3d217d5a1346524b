"""ndex.transfer (see ../shared/design/architecture.md)."""

"""ndex.sinks (see ../shared/design/architecture.md)."""

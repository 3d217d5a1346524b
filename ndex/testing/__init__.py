"""Conformance suites a backend subclasses in its own tests (like `zarr.testing`): `sinks.SinkTests` (and `FileSinkTests`),
`sources.SourceTests`. Needs pytest; nothing in ndex imports this package."""

"""The read side of a push: image slices, TIFF stacks, S3, CATMAID tiles and render-ws, as `Source`s.

    from ndex.sources import SourceSpec, open_source
    source = open_source(SourceSpec(datasource="local", base_path="/data", base_filename="z<p:4>",
                                    z_range=(0, 100), datatype="uint16"))

See ndex/sources/base.py for the Source protocol every backend implements.
"""
from ndex.sources.base import DATASOURCES, Source, SourceSpec, parse_rgb_channel
from ndex.sources.registry import open_source, register

__all__ = ["DATASOURCES", "Source", "SourceSpec", "open_source", "parse_rgb_channel", "register"]

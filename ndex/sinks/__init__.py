"""ndex.sinks: the write side of a pull (see ../shared/design/architecture.md and base.py)."""
from ndex.sinks.assembly import SlabAssembly
from ndex.sinks.base import COMPRESSIONS, OutputSpec, Sink
from ndex.sinks.factory import SINKS, open_sink, output_kind
from ndex.sinks.layout import slice_name
from ndex.sinks.numpy_sink import NumpySink
from ndex.sinks.tiff_options import needs_bigtiff, tiff_compression
from ndex.sinks.tiff_slices import TiffSlices
from ndex.sinks.tiff_stack import TiffStack

__all__ = ["COMPRESSIONS", "SINKS", "NumpySink", "OmeZarr", "OutputSpec", "Sink", "SlabAssembly", "TiffSlices", "TiffStack",
           "needs_bigtiff", "open_sink", "output_kind", "slice_name", "tiff_compression"]


def __getattr__(name: str) -> object:
    """`ndex.sinks.OmeZarr` imports tensorstore (the `zarr` extra) only when it is asked for."""
    if name == "OmeZarr":
        from ndex.sinks.ome_zarr import OmeZarr
        return OmeZarr
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

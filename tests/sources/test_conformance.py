"""Every registered source passes the package's suite (`ndex.testing.sources`): a small synthetic volume
read back exactly, slab by slab."""
from __future__ import annotations

import numpy as np
import tifffile

from ndex.sources import SourceSpec
from ndex.testing.sources import SourceTests

from .conftest import encode, upload_slices


def local_tif(request, tmp_path):
    volume = request.getfixturevalue("volume8")
    spec = SourceSpec(base_path=str(request.getfixturevalue("tif8_dir")), base_filename="img_<p:4>",
                      extension="tif", z_range=(0, 20), x_extent=(0, 300), y_extent=(0, 200), datatype="uint8")
    return spec, volume, 0


def local_png16_inferred(request, tmp_path):
    # no extents and no datatype: both are learnt from the first slice
    spec = SourceSpec(base_path=str(request.getfixturevalue("png16_dir")), base_filename="img_<p:4>",
                      extension="png", z_range=(0, 20), read_threads=2)
    return spec, request.getfixturevalue("volume16"), 0


def stack_memmap(request, tmp_path):
    volume = request.getfixturevalue("volume8")
    tifffile.imwrite(tmp_path / "stack.tif", volume)
    return SourceSpec(datasource="stack", base_path=str(tmp_path / "stack.tif")), volume, 0


def stack_compressed_pages(request, tmp_path):
    volume = request.getfixturevalue("volume16")
    tifffile.imwrite(tmp_path / "stack.tif", volume, compression="zlib")
    spec = SourceSpec(datasource="stack", base_path=str(tmp_path), base_filename="stack", extension="tif",
                      datatype="uint16")
    return spec, volume, 0


def s3_tif(request, tmp_path):
    endpoint = request.getfixturevalue("s3_env")
    volume = request.getfixturevalue("volume8")
    upload_slices(endpoint, "conformance", "data/em", volume)
    spec = SourceSpec(datasource="s3", s3_bucket="conformance", base_path="data/em", base_filename="img_<p:4>",
                      z_range=(0, 20), x_extent=(0, 300), y_extent=(0, 200), datatype="uint8")
    return spec, volume, 0


def tiles_png(request, tmp_path):
    volume = request.getfixturevalue("volume8")
    size = 128
    for z, image in enumerate(volume):
        for row in range(2):
            for col in range(3):
                tile = np.full((size, size), 255, dtype=np.uint8)  # CATMAID pads edge tiles to full size
                part = image[row * size:(row + 1) * size, col * size:(col + 1) * size]
                tile[:part.shape[0], :part.shape[1]] = part
                (tmp_path / str(z)).mkdir(exist_ok=True)
                (tmp_path / str(z) / f"{row}_{col}.png").write_bytes(encode(tile, "png"))
    spec = SourceSpec(datasource="tiles", base_path=str(tmp_path), tile_pattern="{z}/{row}_{col}.png",
                      tile_size=size, x_extent=(0, 300), y_extent=(0, 200), z_range=(0, 20))
    return spec, volume, 0


def render_uint16(request, tmp_path):
    server = request.getfixturevalue("render_server")
    spec = SourceSpec(datasource="render", render_base_url=server.base_url, render_owner=server.owner,
                      render_project=server.project, render_stack=server.stack, datatype="uint16",
                      render_tile_size=64)
    return spec, server.volume, server.origin[2]


class TestLocalTif(SourceTests):
    case = staticmethod(local_tif)


class TestLocalPng16Inferred(SourceTests):
    case = staticmethod(local_png16_inferred)


class TestStackMemmap(SourceTests):
    case = staticmethod(stack_memmap)


class TestStackCompressedPages(SourceTests):
    case = staticmethod(stack_compressed_pages)


class TestS3Tif(SourceTests):
    case = staticmethod(s3_tif)


class TestTilesPng(SourceTests):
    case = staticmethod(tiles_png)


class TestRenderUint16(SourceTests):
    case = staticmethod(render_uint16)

"""Shared data for the source tests: small synthetic volumes written in every supported layout."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

SHAPE_ZYX = (20, 200, 300)  # small, but with x != y so that transposed reads fail


def make_volume(dtype: np.dtype | type, shape: tuple[int, int, int] = SHAPE_ZYX, seed: int = 7) -> np.ndarray:
    """Deterministic noise over the dtype's whole range, so swapped slices or axes never compare equal."""
    info = np.iinfo(dtype)
    return np.random.default_rng(seed).integers(0, int(info.max) + 1, size=shape, dtype=dtype)


def encode(image: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    if fmt == "png":
        Image.fromarray(image).save(buffer, format="PNG")
    else:
        tifffile.imwrite(buffer, image)
    return buffer.getvalue()


def write_slices(directory: Path, volume: np.ndarray, *, template: str = "img_{:04d}", fmt: str = "tif",
                 z0: int = 0, z_step: int = 1) -> None:
    """Slice i of `volume` is z = z0 + i, written as file number z * z_step."""
    directory.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(volume):
        (directory / f"{template.format((z0 + i) * z_step)}.{fmt}").write_bytes(encode(image, fmt))


@pytest.fixture(scope="session")
def volume8() -> np.ndarray:
    return make_volume(np.uint8)


@pytest.fixture(scope="session")
def volume16() -> np.ndarray:
    return make_volume(np.uint16, seed=11)


@pytest.fixture(scope="session")
def tif8_dir(tmp_path_factory, volume8) -> Path:
    """volume8 as img_0000.tif .. img_0019.tif."""
    directory = tmp_path_factory.mktemp("tif8")
    write_slices(directory, volume8)
    return directory


@pytest.fixture(scope="session")
def png16_dir(tmp_path_factory, volume16) -> Path:
    """volume16 as 16-bit PNGs img_0000.png .."""
    directory = tmp_path_factory.mktemp("png16")
    write_slices(directory, volume16, fmt="png")
    return directory




def s3_client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def upload_slices(endpoint: str, bucket: str, prefix: str, volume: np.ndarray, fmt: str = "tif") -> None:
    client = s3_client(endpoint)
    client.create_bucket(Bucket=bucket)
    for z, image in enumerate(volume):
        client.put_object(Bucket=bucket, Key=f"{prefix}/img_{z:04d}.{fmt}", Body=encode(image, fmt))
    client.close()

"""ndex: move large 3D/4D image volumes in and out of BOSS-style spatial databases."""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

# What `pip install ndex` brings: the client, ndpull/ndpush, sources and sinks -- never a server.
BASE = [
    "numpy>=1.24",
    "blosc>=1.10,<2",  # BOSS wire codec: Blosc-1 frames only (python-blosc 1.x)
    "requests>=2.28",
    "tifffile>=2023.1",
    "imagecodecs>=2024.1",  # zstd and lzw TIFF compression (tifffile imports it)
    "Pillow>=9",
    "tqdm>=4.60",
    "slack_sdk>=3.20",
    "jsonschema>=4",  # --metadata_schema
]
# `pip install 'ndex[server]'`: what `ndex serve|token|upgrade|backup|demo` need (ndex.cli.main names it)
SERVER = [
    "fastapi>=0.100",
    "uvicorn>=0.23",
    "httptools>=0.6",  # uvicorn's C HTTP parser: ~2x the cutout throughput of pure-Python h11
    "uvloop>=0.19; sys_platform != 'win32'",
    "SQLAlchemy>=2.0",
    "alembic>=1.13",  # schema migrations of the catalog (ndex/server/migrations)
    "fastapi-offline>=1.7",  # Swagger UI and ReDoc assets, so /docs and /redoc work offline
    "tensorstore>=0.1.60",  # the voxel store (ndex/server/volumes.py)
]
# `pip install 'ndex[zarr]'`: OME-Zarr outputs (ndex/sinks/ome_zarr.py) and the zarr/n5/precomputed push sources
# (ndex/sources/volume.py), named by the sink factory and the source registry when missing
ZARR = ["tensorstore>=0.1.60"]
EXTRAS = {
    "server": SERVER,
    "zarr": ZARR,
    "s3": ["boto3>=1.26"],
    "postgres": [*SERVER, "psycopg[binary]>=3.1"],  # ndex serve --db postgresql://... (several --workers)
    "dask": ["distributed>=2023.1"],
    "viewer": ["neuroglancer>=2.40"],  # /view/ in ndex serve, and ndex view
    # ndex/ imports none of these: the suite's tools, and intern as the reference client
    "test": [
        "pytest>=7.4",
        "pytest-timeout>=2.1",
        "responses>=0.23",
        "hypothesis>=6.80",
        "moto[server]>=5",
        "boto3>=1.26",
        "httpx>=0.24",
        "distributed>=2023.1",
        "psutil>=5.9",  # the scale-out tests find a busy server worker to kill
        "intern>=1.4",
        "ruff>=0.4",
        "mypy>=1.10",
        "neuroglancer>=2.40",
        "playwright>=1.40",  # drives Debian's chromium (never downloads a browser)
        "zarr>=3",  # reads /zarr/ over HTTP in tests
        "fsspec[http]>=2024.1",  # zarr-python's HTTP store
        "cloud-volume>=12",  # reads ndpull's precomputed output, as CloudVolume users will
        # ome-zarr's reader reads ndpull's OME-Zarr output; scripts/dev.py installs ome-zarr itself without
        # dependencies (its fsspec[s3] needs an aiobotocore that refuses our botocore), these are the rest
        "scikit-image>=0.22",
        "toolz>=0.12",
        "rangehttpserver>=1.3",
        "Deprecated>=1.2",
    ],
}

setup(
    name="ndex",
    version="2.0.0.dev0",
    description="Fast, memory-bounded, resumable transfer of image volumes to and from BOSS spatial databases",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["ndex", "ndex.*"]),
    include_package_data=True,
    package_data={"ndex.server.migrations": ["script.py.mako", "README.md"]},
    install_requires=BASE,
    extras_require=EXTRAS,
    entry_points={
        "console_scripts": [
            "ndex=ndex.cli.main:main",
            "ndpull=ndex.cli.pull:main",
            "ndpush=ndex.cli.push:main",
            "expand_stacks=ndex.cli.expand_stacks:main",
        ]
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Image Processing",
    ],
)

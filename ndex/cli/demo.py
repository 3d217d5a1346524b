"""`ndex demo`: the main job end to end on the embedded default, in one command.

Starts `ndex serve` on a free 127.0.0.1 port in a work directory, writes a synthetic EM volume as TIFF
slices and an annotation volume as a TIFF stack, pushes both with ndpush's engine, pulls a region that
is aligned to nothing back with ndpull's engine, checks it voxel for voxel against the source files,
prints what it did and how fast, and stops the server.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

from ndex.cli.common import EXIT_FAILED, EXIT_OK, add_logging_flags, run_guarded, setup_logging
from ndex.cli.local_server import LocalServer
from ndex.client import BossClient, ChannelRef
from ndex.geometry import Box
from ndex.sources import SourceSpec
from ndex.synthetic import em_slice, label_slice
from ndex.transfer.download import PullSpec, pull, pull_array
from ndex.transfer.options import TransferOptions
from ndex.transfer.resources import ResourceSpec, ensure_resources
from ndex.transfer.upload import PushSpec, push

SIZES = {  # (x, y, z) of the EM channel; the annotation channel is half as wide and half as deep
    "small": (1024, 768, 32),
    "default": (2048, 2048, 64),
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", help="where the server data, source slices and pulled files go "
                        "(default: a new temporary directory, kept afterwards so you can look)")
    parser.add_argument("--size", choices=SIZES, default="default",
                        help="default: 2048x2048x64 EM (256 MB) + 1024x1024x32 labels (256 MB); small: a few MB")
    parser.add_argument("--threads", type=int, default=8, help="parallel requests for push and pull")
    add_logging_flags(parser)


def say(text: str) -> None:
    print(text, flush=True)


def write_sources(work: Path, em_shape: tuple[int, int, int]) -> tuple[Path, Path]:
    """EM slices em_0000.tif ... and one uint64 label stack, generated slice by slice."""
    nx, ny, nz = em_shape
    slices = work / "source" / "em"
    slices.mkdir(parents=True, exist_ok=True)
    for z in range(nz):
        tifffile.imwrite(slices / f"em_{z:04d}.tif", em_slice(z, (ny, nx)))
    stack = work / "source" / "labels.tif"
    with tifffile.TiffWriter(stack, bigtiff=True) as tif:
        for z in range(nz // 2):
            tif.write(label_slice(z, (ny // 2, nx // 2)), contiguous=True)
    return slices, stack


def ingest(client: BossClient, work: Path, em_shape: tuple[int, int, int], threads: int) -> list[str]:
    nx, ny, nz = em_shape
    slices, stack = write_sources(work, em_shape)
    frame = Box((0, 0, 0), (nx, ny, nz))
    em, labels = ChannelRef("ndex_demo", "em", "image"), ChannelRef("ndex_demo", "em", "labels")
    ensure_resources(client, ResourceSpec(em, frame, voxel_size=(4.0, 4.0, 40.0), datatype="uint8",
                                          frame_name="ndex_demo_frame"))
    ensure_resources(client, ResourceSpec(labels, frame, voxel_size=(4.0, 4.0, 40.0), datatype="uint64",
                                          source_channel="image", frame_name="ndex_demo_frame"))
    lines = []
    for ref, source in (
        (em, SourceSpec(datasource="local", base_path=str(slices), base_filename="em_<p:4>", extension="tif",
                        z_range=(0, nz), x_extent=(0, nx), y_extent=(0, ny), datatype="uint8")),
        (labels, SourceSpec(datasource="stack", base_path=str(stack), z_range=(0, nz // 2),
                            x_extent=(0, nx // 2), y_extent=(0, ny // 2), datatype="uint64")),
    ):
        options = TransferOptions(threads=threads, verify="all",
                                  manifest=str(work / f"push_{ref.channel}.manifest.sqlite"))
        report = push(PushSpec(ref=ref, source=source), options, client=client)
        if not report.ok:
            raise RuntimeError("; ".join(report.failure_lines(3)))
        lines.append(f"pushed {ref}: {report.summary()}")
    return lines


def verify_pull(client: BossClient, work: Path, em_shape: tuple[int, int, int], threads: int) -> list[str]:
    nx, ny, nz = em_shape
    region = Box((173, 301, 5), (nx - 211, ny - 97, nz - 7))  # aligned to nothing on purpose
    out = work / "pulled"
    report = pull(PullSpec(ref=ChannelRef("ndex_demo", "em", "image"), box=region, outdir=out),
                  TransferOptions(threads=threads), client=client)
    if not report.ok:
        raise RuntimeError("; ".join(report.failure_lines(3)))
    files = sorted(out.glob("*.tif"))
    mismatched = [f.name for z, f in zip(range(*region.z), files)
                  if not np.array_equal(tifffile.imread(f), em_slice(z, (ny, nx))[slice(*region.y), slice(*region.x)])]
    if len(files) != region.shape[2] or mismatched:
        raise RuntimeError(f"pulled EM differs from the source: {len(files)} files, mismatched {mismatched[:3]}")
    labels_box = Box((50, 60, 3), (nx // 2 - 70, ny // 2 - 30, nz // 2 - 5))
    got = pull_array(ChannelRef("ndex_demo", "em", "labels"), labels_box, client=client,
                     options=TransferOptions(threads=threads))
    truth = np.stack([label_slice(z, (ny // 2, nx // 2)) for z in range(*labels_box.z)])
    if not np.array_equal(got, truth[:, slice(*labels_box.y), slice(*labels_box.x)]):
        raise RuntimeError("pulled labels differ from the source stack")
    return [f"pulled {region} of ndex_demo/em/image to {len(files)} TIFF slices in {out}: {report.summary()}",
            f"verified voxel for voxel: {region.nvoxels:,} EM voxels and {labels_box.nvoxels:,} label voxels match"]


def execute(args: argparse.Namespace) -> int:
    setup_logging(args.verbose, args.quiet)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="ndex-demo-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    em_shape = SIZES[args.size]
    say(f"ndex demo in {work}")
    t0 = time.monotonic()
    with LocalServer(work / "data", log_path=work / "serve.log") as server:
        say(f"started ndex serve at {server.remote.url} (data in {server.data_dir}, log {server.log_path})")
        with BossClient(server.remote, threads=args.threads) as client:
            nx, ny, nz = em_shape
            say(f"writing a synthetic {nx}x{ny}x{nz} EM volume and {nx // 2}x{ny // 2}x{nz // 2} labels to "
                f"{work / 'source'}")
            for line in ingest(client, work, em_shape, args.threads):
                say(line)
            for line in verify_pull(client, work, em_shape, args.threads):
                say(line)
    say(f"demo verified in {time.monotonic() - t0:.1f} s; server stopped. Files stay in {work}")
    data = work / "data"
    say("explore it yourself (after `source .venv/bin/activate` if you ran scripts/dev.py):\n"
        f"  ndex serve --data {data} --port 8080 &\n"
        f"  export NDEX_URL=http://127.0.0.1:8080 NDEX_TOKEN=$(ndex token create --data {data} --user demo)\n"
        "  ndex info ndex_demo em image\n"
        "  ndpull --collection ndex_demo --experiment em --channel image --x 0 512 --y 0 512 --z 0 16 --outdir out")
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        try:
            return execute(args)
        except RuntimeError as exc:
            print(f"demo failed: {exc}", file=sys.stderr)
            return EXIT_FAILED
    return run_guarded(body)

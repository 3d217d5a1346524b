"""A bad slice in the middle of a series ends the push with one line that names its z and file, exit
code 2 (bad input), no retries, and no Python internals; under `ndex plan --run` the job is not retried
and `ndex status` shows its error."""
from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import tifffile
from fixtures_server import make_channel
from PIL import Image
from push_helpers import random_volume, write_slices

from ndex.cli import push as push_cli
from ndex.cli.main import main as ndex_main
from ndex.cli.plan_status import execute as status_of

DEPTH, SIDE, BAD_Z = 40, 64, 20


def tiff_bytes(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    tifffile.imwrite(out, array)
    return out.getvalue()


def png_bytes(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, "PNG")
    return out.getvalue()


GOOD = random_volume((1, SIDE, SIDE), "uint8")[0]
BAD_SLICES = {  # what the file at BAD_Z holds -> words the one line must contain
    "not an image": (b"these are not the pixels you are looking for", "is not a readable image"),
    "truncated": (tiff_bytes(GOOD)[:-600], "is not a readable image"),
    "empty": (b"", "is not a readable image"),
    "wrong size": (tiff_bytes(GOOD[:32]), "is 64x32 (x by y) but the x/y extents say 64x64"),
    "wrong dtype": (tiff_bytes(GOOD.astype(np.uint16) * 300), "holds uint16 voxels but the datatype is uint8"),
    "RGB": (png_bytes(np.stack([GOOD] * 3, axis=-1)), "is a 3-channel (RGB/RGBA) image"),
}


def series_with_a_bad_slice(directory: Path, content: bytes) -> Path:
    write_slices(directory, random_volume((DEPTH, SIDE, SIDE), "uint8"))
    (directory / f"img_{BAD_Z:04d}.tif").write_bytes(content)
    return directory / f"img_{BAD_Z:04d}.tif"


def push_args(server, channel, images: Path, logs: Path) -> list[str]:
    return ["--url", server.url, "--token", server.token, "--collection", channel.collection,
            "--experiment", channel.experiment, "--channel", channel.channel, "--base_path", str(images),
            "--base_filename", "img_<p:4>", "--x_extent", "0", str(SIDE), "--y_extent", "0", str(SIDE),
            "--z_extent", "0", str(DEPTH), "--datatype", "uint8", "--log_dir", str(logs)]


@pytest.mark.parametrize("kind", list(BAD_SLICES))
def test_a_bad_slice_is_named_once_with_its_z_and_file_and_exits_2(tmp_path, server_app, capsys, kind):
    content, words = BAD_SLICES[kind]
    bad = series_with_a_bad_slice(tmp_path / "img", content)
    channel = make_channel(server_app, extent=(SIDE, SIDE, DEPTH))
    assert push_cli.main([*push_args(server_app, channel, tmp_path / "img", tmp_path / "logs"), "-q"]) == 2
    captured = capsys.readouterr()
    errors = captured.err.strip().splitlines()
    assert len(errors) == 1, captured.err
    assert errors[0].startswith(f"error: slice z={BAD_Z} ({bad})") and words in errors[0]
    assert "retries" in captured.out and ", 0 retries" in captured.out  # the run summary: nothing re-sent
    for internal in ("Error:", "<_io.", "object at 0x", "Traceback"):
        assert internal not in captured.err


def test_under_plan_run_the_job_is_not_retried_and_status_shows_its_error(tmp_path, server_app, capsys):
    series_with_a_bad_slice(tmp_path / "img", b"not an image")
    channel = make_channel(server_app, extent=(SIDE, SIDE, DEPTH))
    plan_dir = tmp_path / "plan"
    code = ndex_main(["plan", "push", *push_args(server_app, channel, tmp_path / "img", tmp_path / "logs"),
                      "--workers", "1", "--jobs", "1", "--run", "local", "--retries", "3",
                      "--plan_dir", str(plan_dir)])
    assert code != 0
    capsys.readouterr()
    states = [json.loads(p.read_text()) for p in (plan_dir / "jobs").glob("*.state.json")]
    failed = [s for s in states if s.get("state") == "failed"]
    assert len(failed) == 1 and failed[0]["attempts"] == 1 and failed[0]["exit_code"] == 2
    assert status_of(type("Args", (), {"plan_dir": str(plan_dir)})()) == 1
    listing = capsys.readouterr().out
    line = next(x for x in listing.splitlines() if "failed after" in x)
    assert re.search(rf"exit code 2: error: slice z={BAD_Z} \(.*img_{BAD_Z:04d}\.tif\) is not a readable image", line)

"""ndpull and ndpush end on BossDB's usage quota with one line and exit code 3, against BOSS's recorded
429 (no Retry-After), whichever server the rest of the suite runs."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import responses
import tifffile

from ndex.cli.pull import main as ndpull
from ndex.cli.push import main as ndpush

BASE = "http://127.0.0.1:9"  # a closed loopback port: only the mocks answer
DATA = Path(__file__).resolve().parents[1] / "data" / "boss"
QUOTA = json.loads((DATA / "errors.json").read_text())["quota_cutout"]
CONN = ["--url", BASE, "--token", "0123456789abcdef0123456789abcdef01234567",
        "--collection", "lab2019", "--experiment", "em", "--channel", "image"]


def boss(rsps: responses.RequestsMock) -> None:
    """BOSS's answers for lab2019/em/image, and the quota refusal for every cutout."""
    load = lambda name: json.loads((DATA / f"{name}.json").read_text())  # noqa: E731
    rsps.get(f"{BASE}/v1/collection/lab2019/experiment/em/channel/image", json=load("channel_get"))
    rsps.get(f"{BASE}/v1/collection/lab2019/experiment/em", json=load("experiment_get"))
    rsps.get(f"{BASE}/v1/coord/lab2019_em", json=load("coord_frame_offset"))
    rsps.get(re.compile(rf"{BASE}/v1/meta/.*"), json={"keys": []})
    for method in ("GET", "POST"):
        rsps.add(method, re.compile(rf"{BASE}/v1/cutout/.*"), status=429, json=QUOTA["body"])


def test_ndpull_ends_on_the_quota_with_one_line(tmp_path, capsys):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        boss(rsps)
        code = ndpull([*CONN, "-q", "--full_extent", "--outdir", str(tmp_path), "--threads", "2"])
        cutouts = [c for c in rsps.calls if "/cutout/" in c.request.url]
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3 and 1 <= len(cutouts) <= 2  # 3 slabs x several blocks, one try per thread
    assert len(err) == 1 and "usage quota is spent" in err[0] and "Expected available tomorrow" in err[0]


def test_ndpush_ends_on_the_quota_with_one_line(tmp_path, capsys):
    for z in range(5, 21):
        tifffile.imwrite(tmp_path / f"img_{z:04d}.tif", np.full((300, 600), z + 1, np.uint8))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        boss(rsps)
        code = ndpush([*CONN, "-q", "--base_path", str(tmp_path), "--base_filename", "img_<p:4>",
                       "--extension", "tif", "--z_range", "5", "21", "--threads", "2", "--log_dir", str(tmp_path),
                       "--x_extent", "1000", "1600", "--y_extent", "600", "900", "--z_extent", "5", "21"])
        posts = [c for c in rsps.calls if c.request.method == "POST"]
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3 and 1 <= len(posts) <= 2, err
    assert len(err) == 1 and "usage quota is spent" in err[0]

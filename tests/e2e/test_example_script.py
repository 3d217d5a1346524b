"""examples/example.py runs as documented against a live server (so the example never rots)."""
import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "example.py"


def test_example_script_pulls_into_numpy_and_tiffs(ndex_server, tmp_path):
    env = dict(os.environ, NDEX_URL=ndex_server.url, NDEX_TOKEN=ndex_server.token)
    for _ in range(2):  # the second run finds the volume already there
        run = subprocess.run([sys.executable, str(EXAMPLE)], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
        assert "array (37, 600, 600) uint8" in run.stdout
    assert len(list((tmp_path / "example_out").glob("*.tif"))) == 37

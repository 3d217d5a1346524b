"""The README's first two commands are what a newcomer runs: they must exist and work."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```(?:bash|sh)?\n(.*?)```", text, re.S)
    assert block, "README.md must start with a code block holding the two commands"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.split("#")[0].strip()]


def test_readme_starts_with_exactly_the_demo_and_test_commands():
    assert readme_commands() == ["python3 scripts/dev.py demo", "python3 scripts/dev.py test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 scripts/dev.py test" in ci


def run_readme_command(command: str, *extra: str, timeout: int = 600) -> subprocess.CompletedProcess:
    argv = command.split()
    argv[0] = sys.executable  # the same interpreter that runs the suite; dev.py reuses the venv it finds
    env = dict(os.environ, NDEX_VENV=str(Path(sys.prefix)))
    return subprocess.run([*argv, *extra], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_demo_command_runs_and_verifies(tmp_path):
    result = run_readme_command(readme_commands()[0], "--workdir", str(tmp_path))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "verified" in result.stdout.lower()


def test_test_command_runs_the_suite():
    if os.environ.get("NDEX_README_TEST_DEPTH"):
        pytest.skip("already inside the README test command")
    env_cmd = readme_commands()[1]
    os.environ["NDEX_README_TEST_DEPTH"] = "1"
    try:
        result = run_readme_command(env_cmd, "tests/test_geometry.py", "-q")
    finally:
        del os.environ["NDEX_README_TEST_DEPTH"]
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert re.search(r"\d+ passed", result.stdout)

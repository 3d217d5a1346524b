#!/usr/bin/env python3
"""Set up a virtualenv for ndex and run its main job or its test suite.

    python3 scripts/dev.py demo     # venv + install with the server extra, then `ndex demo`
    python3 scripts/dev.py test     # venv + install with test extras, then ruff, mypy and the pytest suite

Only the standard library is used here: this runs on a machine that has nothing but Python 3.10+
and this repository. The virtualenv lives in `.venv` (override with NDEX_VENV); installs are
skipped when setup.py and the constraints have not changed since the last one.
"""
from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "scripts" / "constraints.txt"
NO_DEPS = ("ome-zarr",)  # test packages installed without their dependencies (see ensure_venv)
# Real components the test suite starts itself (never skipped): how to tell each is there, and its Debian
# package. PostgreSQL keeps its binaries under /usr/lib/postgresql/<major>/bin, out of PATH.
SYSTEM_PACKAGES = {
    "postgresql": lambda: bool(shutil.which("initdb") or glob.glob("/usr/lib/postgresql/*/bin/initdb")),
    "chromium": lambda: bool(shutil.which("chromium")),
}


def venv_dir() -> Path:
    return Path(os.environ.get("NDEX_VENV", ROOT / ".venv")).resolve()


def venv_bin(name: str) -> Path:
    sub = "Scripts" if os.name == "nt" else "bin"
    suffix = ".exe" if os.name == "nt" else ""
    return venv_dir() / sub / f"{name}{suffix}"


def install_stamp(extras: str) -> str:
    digest = hashlib.sha256(extras.encode())
    for path in (ROOT / "setup.py", ROOT / "pyproject.toml", CONSTRAINTS):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_venv(extras: str) -> None:
    """Create the venv if needed and install ndex (editable) with `extras`, once per change."""
    if not venv_bin("python").exists():
        print(f"creating virtualenv {venv_dir()}", flush=True)
        venv.EnvBuilder(with_pip=True).create(venv_dir())
    stamp_file = venv_dir() / f".ndex-install-{extras or 'base'}"
    stamp = install_stamp(extras)
    if stamp_file.exists() and stamp_file.read_text() == stamp:
        return
    target = f"{ROOT}[{extras}]" if extras else str(ROOT)
    print(f"installing ndex{f'[{extras}]' if extras else ''} into {venv_dir()} (a minute or two)", flush=True)
    cmd = [str(venv_bin("python")), "-m", "pip", "install", "-q", "-c", str(CONSTRAINTS), "-e", target]
    done = subprocess.run(cmd, capture_output=True, text=True)
    # pip repeats a warning per missing local index entry on some machines: noise, not news
    noise = ("WARNING: Location 'file:", "[notice]")
    for line in (done.stdout + done.stderr).splitlines():
        if line.strip() and not line.startswith(noise):
            print(line, file=sys.stderr)
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, cmd)
    if "test" in extras.split(","):
        # ome-zarr (a test reader) requires fsspec[s3], whose aiobotocore pins a botocore older than boto3's:
        # it is installed without its dependencies, which setup.py's test extra lists minus that one
        pin = [str(venv_bin("python")), "-m", "pip", "install", "-q", "--no-deps", "-c", str(CONSTRAINTS), *NO_DEPS]
        subprocess.run(pin, check=True, capture_output=True, text=True)
    stamp_file.write_text(stamp)


def ensure_system_packages() -> None:
    """Install the Debian packages the tests need (PostgreSQL, Chromium) when they are missing."""
    missing = [name for name, present in SYSTEM_PACKAGES.items() if not present()]
    if not missing:
        return
    apt = ["apt-get"] if os.geteuid() == 0 else ["sudo", "-n", "apt-get"]
    if not shutil.which("apt-get"):
        raise SystemExit(f"error: the tests need {', '.join(missing)}, and this machine has no apt-get: "
                         "install them with your system's package manager")
    print(f"installing Debian packages: {' '.join(missing)} (once)", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in ([*apt, "update", "-qq"], [*apt, "install", "-y", "-qq", "--no-install-recommends", *missing]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stdout[-2000:] + done.stderr[-2000:], file=sys.stderr)
            raise subprocess.CalledProcessError(done.returncode, cmd)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test", "setup"}:
        print("usage: python3 scripts/dev.py demo|test|setup [extra arguments]", file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    # demo starts an `ndex serve`; the tests start servers, S3 (moto), Dask and PostgreSQL
    ensure_venv("server,zarr,test,s3,dask,postgres" if command in {"test", "setup"} else "server")
    if command in {"test", "setup"}:
        ensure_system_packages()
    if command == "setup":
        print(f"ready: activate with `source {venv_dir() / 'bin' / 'activate'}`")
        return 0
    if command == "demo":
        return subprocess.call([str(venv_bin("ndex")), "demo", *rest])
    env = dict(os.environ, PATH=f"{venv_bin('python').parent}{os.pathsep}{os.environ.get('PATH', '')}")
    failed = static_checks(env)
    if failed:
        return failed
    return subprocess.call([str(venv_bin("python")), "-m", "pytest", *rest], cwd=ROOT, env=env)


# Run before the tests, each must pass: a lint or type error fails the run as a failing test does.
STATIC_CHECKS = (
    ("ruff", ["ruff", "check", "ndex", "tests", "benchmarks", "scripts"]),
    ("mypy", ["mypy"]),  # what and how: [tool.mypy] in pyproject.toml
)


def static_checks(env: dict[str, str]) -> int:
    """Run ruff and mypy; the exit code of the first that fails (after printing its findings), else 0."""
    for name, cmd in STATIC_CHECKS:
        print(f"{name}: {' '.join(cmd[1:]) or '(pyproject.toml)'}", flush=True)
        code = subprocess.call([str(venv_bin(cmd[0])), *cmd[1:]], cwd=ROOT, env=env)
        if code != 0:
            print(f"error: {name} found problems (above): fix them, then run the tests again", file=sys.stderr)
            return code
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except subprocess.CalledProcessError as exc:
        print(f"error: `{' '.join(map(str, exc.cmd))}` failed with exit code {exc.returncode}", file=sys.stderr)
        sys.exit(exc.returncode or 1)

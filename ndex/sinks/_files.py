"""Writes that are never visible half-done, and disk failures turned into one-line SinkErrors.

Every sink writes `<name>.partial` and renames it once complete (`publish`), so a file under a
final name is always whole. OSErrors raised while writing become `SinkError`s that name the path
and what to do about it; the library never guesses further.
"""
from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ndex.errors import SinkError

OS_ERROR_CODE = re.compile(r"os_error_code=\W?(\d+)")  # how tensorstore names the OSError behind a failure

log = logging.getLogger(__name__)

PARTIAL = ".partial"

_FIXES = {
    errno.ENOSPC: "free disk space or choose another output directory",
    errno.EDQUOT: "free space within your disk quota or choose another output directory",
    errno.EACCES: "choose a writable output directory or fix its permissions",
    errno.EPERM: "choose a writable output directory or fix its permissions",
    errno.EROFS: "the file system is read-only: choose another output directory",
}


def partial_of(path: Path) -> Path:
    """Where `path` is written before it is complete."""
    return path.with_name(path.name + PARTIAL)


def disk_error(path: Path, exc: BaseException) -> SinkError:
    """A one-line SinkError naming `path`, the cause and the fix."""
    code = getattr(exc, "errno", None)
    cause = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    fix = _FIXES.get(code, "check that the output directory exists, is writable and has free space")  # type: ignore[arg-type]  # None: no errno, the general fix
    err = SinkError(f"cannot write {path}: {cause}; {fix}")
    err.errno = code
    return err


@contextmanager
def disk_errors(path: Path) -> Iterator[None]:
    """Translate OSErrors raised inside the block into SinkErrors about `path`."""
    try:
        yield
    except SinkError:
        raise
    except OSError as exc:
        raise disk_error(path, exc) from exc


def publish(partial: Path, final: Path) -> None:
    """Give a complete `partial` its final name (atomic on one file system)."""
    with disk_errors(final):
        if partial.is_dir() and final.exists():
            _replace_dir(partial, final)
        else:
            os.replace(partial, final)


def _replace_dir(partial: Path, final: Path) -> None:
    # os.replace refuses a non-empty target directory: move the old one aside first, so the final
    # name never points at a mixture of both
    old = final.with_name(final.name + ".old")
    remove(old)
    os.replace(final, old)
    os.replace(partial, final)
    remove(old)


def remove(path: Path) -> None:
    """Delete a file or a directory tree if it exists (cleanup must not hide the original error)."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not remove %s: %s", path, exc)


def make_dir(path: Path) -> None:
    with disk_errors(path):
        path.mkdir(parents=True, exist_ok=True)


def write_json(path: Path, obj: object) -> None:
    """Replace the JSON file `path` atomically: a reader sees the old or the new content, never half."""
    partial = partial_of(path)
    with disk_errors(path):
        partial.write_text(json.dumps(obj, indent=1, sort_keys=True))
        os.replace(partial, path)


def read_json(path: Path) -> dict | None:
    """The JSON object in `path`, or None when it is missing or unreadable (then we start over)."""
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def tensorstore_oserror(exc: BaseException) -> OSError:
    """The OSError behind a tensorstore error: it appends `[os_error_code='28']` to its message."""
    text = str(exc)
    found = OS_ERROR_CODE.search(text)
    if found:
        code = int(found.group(1))
        return OSError(code, os.strerror(code))
    return OSError(None, text.splitlines()[0] if text else type(exc).__name__)

"""Slice files on a local (or mounted network) file system: `--datasource local`."""
from __future__ import annotations

import os
from typing import IO

from ndex.errors import SourceError
from ndex.sources.base import SourceSpec
from ndex.sources.slices import SliceSource


class LocalFiles:
    """FileStore over the local file system; names are paths."""

    def join(self, directory: str, name: str) -> str:
        return os.path.join(directory, name) if directory else name

    def read(self, location: str) -> bytes | None:
        try:
            with open(location, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None
        except OSError as exc:  # a directory, no permission, an I/O error of the disk
            raise SourceError(f"cannot read {location}: {exc.strerror or exc}") from exc

    def open_file(self, location: str) -> IO[bytes] | None:
        """The file opened for random access (a band of a TIFF slice); None if it does not exist."""
        try:
            return open(location, "rb")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SourceError(f"cannot read {location}: {exc.strerror or exc}") from exc

    def describe(self) -> str:
        return "the local file system"

    def close(self) -> None:
        pass


def open_local(spec: SourceSpec) -> SliceSource:
    return SliceSource(spec, LocalFiles())

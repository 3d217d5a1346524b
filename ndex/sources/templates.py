"""ndex 1.x file name templates: `<p:4>` padded file number, `<>` unpadded, `<ch>` channel name.

    base_path="/data/<ch>", base_filename="img_<p:4>", extension="tif", channel="em", z_step=2
    z=3  ->  /data/em/img_0006.tif        (file number = z * z_step)

Placeholders work in base_path and base_filename alike. Any other `<...>` is refused up front
rather than left in a name that then "does not exist" for every slice.
"""
from __future__ import annotations

import re

from ndex.errors import UsageError
from ndex.sources.base import SourceSpec

PLACEHOLDER = re.compile(r"<([^<>]*)>")
PADDED = re.compile(r"p:(\d+)")


def check_template(template: str, what: str) -> bool:
    """True if `template` contains a z placeholder; UsageError for an unknown placeholder."""
    has_z = False
    for token in PLACEHOLDER.findall(template):
        if token == "" or PADDED.fullmatch(token):
            has_z = True
        elif token != "ch":
            raise UsageError(f"unknown placeholder <{token}> in {what} {template!r}: "
                             "use <p:N> (zero-padded z), <> (unpadded z) or <ch> (channel name)")
    return has_z


def fill_template(template: str, number: int, channel: str) -> str:
    """Substitute the file number and channel name into `template`."""

    def substitute(match: re.Match[str]) -> str:
        token = match.group(1)
        if token == "ch":
            return channel
        padded = PADDED.fullmatch(token)
        return str(number).zfill(int(padded.group(1))) if padded else str(number)

    return PLACEHOLDER.sub(substitute, template)


class SliceNames:
    """Maps a source z to (directory, file name) for local paths or S3 keys."""

    def __init__(self, spec: SourceSpec) -> None:
        if not spec.base_filename:
            raise UsageError("no --base_filename: give the slice file name template, e.g. --base_filename 'img_<p:4>'")
        has_z = check_template(spec.base_filename, "base_filename") | check_template(spec.base_path, "base_path")
        if "<ch>" in spec.base_filename + spec.base_path and not spec.channel:
            raise UsageError("the file name template uses <ch> but no channel name was given")
        z_range = spec.z_range
        if not has_z and (z_range is None or z_range[1] - z_range[0] > 1):
            raise UsageError(f"base_filename {spec.base_filename!r} has no z placeholder (<p:N> or <>), "
                             "so every slice would be read from the same file")
        self.spec = spec

    def directory(self, z: int) -> str:
        return fill_template(self.spec.base_path, z * self.spec.z_step, self.spec.channel)

    def filename(self, z: int) -> str:
        stem = fill_template(self.spec.base_filename, z * self.spec.z_step, self.spec.channel)
        return f"{stem}.{self.spec.extension}" if self.spec.extension else stem

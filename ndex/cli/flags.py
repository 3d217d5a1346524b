"""Field names of the library's specs and options, and the flags that set them.

The library names a wrong value by its field (`FieldError`); a command names the flag the user typed.
`flag_names` turns the one into the other at the edge, so no flag name reaches the library.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ndex.errors import FieldError

# fields whose flag is not `--<field>`
FLAGS = {
    "block_bytes": "--block_size",
    "time_range": "--t",
    "box": "--x/--y/--z",
    "offsets": "--offset_extents (or --forced_offsets X Y Z)",
    "frame": "--coord_frame_*_extent",
}


def flag_of(field: str, overrides: dict[str, str] | None = None) -> str:
    return (overrides or {}).get(field) or FLAGS.get(field, f"--{field}")


@contextmanager
def flag_names(**overrides: str) -> Iterator[None]:
    """A FieldError raised inside names the flag of its field (`overrides`: field -> flag for this command)."""
    try:
        yield
    except FieldError as exc:
        raise exc.renamed({exc.field: flag_of(exc.field, overrides)}) from None

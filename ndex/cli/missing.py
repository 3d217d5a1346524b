"""A channel that is not there: one line saying which of collection, experiment and channel is missing,
and what to do about it.

The server's 404 says "not found: check the name"; a newcomer who has not created the resources yet
needs to hear about `--create_resources` (commands that can create them) or `ndex info` (those that
only read). The server is asked which part is missing, top down, only after a 404.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ndex.client import BossClient, ChannelRef
from ndex.errors import NdexError, ResourceNotFound

# how a command that can create resources says so
CREATE_HERE = "the same command with --create_resources creates it"
CREATE_BY_PLAN = "`ndex plan push ... --create_resources` plans its creation"


def missing_part(client: BossClient, ref: ChannelRef) -> str | None:
    """'collection', 'experiment' or 'channel': the first part of `ref` the server does not have; None if
    all exist or the server cannot tell (the original error then stands)."""
    probes: tuple[tuple[str, Callable[[], Any]], ...] = (
        ("collection", lambda: client.get_collection(ref.collection)),
        ("experiment", lambda: client.get_experiment(ref.collection, ref.experiment)),
        ("channel", lambda: client.get_channel(ref)))
    for part, get in probes:
        try:
            get()
        except ResourceNotFound:
            return part
        except NdexError:
            return None
    return None


def missing_line(ref: ChannelRef, part: str, create: str | None) -> str:
    """What is missing, how to create it (`create`, None for commands that only read) and how to list
    what exists instead."""
    name, listing = {
        "collection": (ref.collection, "`ndex info` lists the collections"),
        "experiment": (f"{ref.collection}/{ref.experiment}", f"`ndex info {ref.collection}` lists its experiments"),
        "channel": (ref.path, f"`ndex info {ref.collection} {ref.experiment}` lists its channels"),
    }[part]
    line = f"{part} {name} does not exist: "
    if create:
        reuse = (f", in experiment {ref.collection}/{ref.experiment}'s coordinate frame (no --voxel_size or "
                 "extents to restate)") if part == "channel" else ""
        line += f"{create}{reuse}; or check --{part} ({listing})"
    else:
        line += f"check --{part} ({listing})"
    return line


@contextmanager
def naming_missing(client: BossClient, ref: ChannelRef, create: str | None = None) -> Iterator[None]:
    """A 404 raised inside about `ref` becomes `missing_line`'s one line (still a ResourceNotFound)."""
    try:
        yield
    except ResourceNotFound as exc:
        part = missing_part(client, ref)
        if part is None:
            raise
        raise ResourceNotFound(missing_line(ref, part, create), status=exc.status, code=exc.code,
                               url=exc.url) from None

"""Settings of `ndex serve` as data: one frozen value, each field carrying its own help text.

The CLI builds its flags from `help_of`, so a setting and its documentation cannot drift apart.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path


def _setting(default, help_text: str):
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class ServerSettings:
    """Everything `create_app` needs to know besides its collaborators."""

    data_dir: str = _setting("./ndex-data", "directory holding ndex.sqlite and the zarr store (created if missing)")
    db_url: str = _setting("", "SQLAlchemy URL of the resource database (default: sqlite in --data); "
                               "use postgresql://... when several server processes share the data")
    store_url: str = _setting("", "volume store: a directory, file:///path or s3://bucket/prefix "
                                  "(default: <data>/store)")
    allow_sourceless_annotations: bool = _setting(
        False, "accept annotation channels without source channels (BOSS production does; intern's tests expect "
               "a rejection)")
    cache_seconds: float = _setting(2.0, "how long channel and token lookups are cached in each process")
    downsample_workers: int = _setting(1, "background threads building resolution pyramids")
    job_lease_seconds: float = _setting(
        30.0, "a downsample job whose server process stops (crash, kill, lost host) is resumed by another "
              "process after this many seconds")
    store_cache_mb: int = _setting(256, "chunk cache of the volume store, in MiB")
    downsample_max_voxels: int = _setting(
        (200 * 512) * (200 * 512) * (200 * 16), "largest frame (voxels of the level-0 coordinate frame) a "
        "non-admin may downsample; larger ones are refused with 409 as BOSS's DOWNSAMPLE_MAX_SIZE does "
        "(default: BOSS's value; 0 = no limit)")
    quota_per_day: int = _setting(
        0, "bytes of cutout data each user may read, and separately write, per UTC day; past it requests "
           "are refused with BOSS's 429 'User is throttled. Expected available tomorrow.' (0 = no quota; "
           "counted in each server process)")
    fsync: bool = _setting(
        False, "flush every written chunk to disk before a POST is answered. Off by default, which writes "
               "faster: a crash of the server process loses nothing already answered, but a power cut or an "
               "OS crash may lose the last seconds of writes (local stores only; S3 is durable without it)")

    cutout_memory_mb: int = _setting(
        4096, "memory budget of the cutouts in flight in each server process, in MiB: a cutout GET or POST "
              "that would pass it is answered 503 with Retry-After (clients wait and retry); 0 = no budget")
    request_timeout: float = _setting(
        300.0, "seconds a request may work (scans such as ids and bounding boxes stop there with a 413); 0 = none")
    client_timeout: float = _setting(
        30.0, "seconds an idle keep-alive connection, or a request whose headers or body stop arriving, is "
              "kept open before it is closed (slow-client protection)")
    cors_origins: str = _setting("", "origins whose browser pages may call the API (CORS): a comma list like "
                                     "https://neuroglancer.example:8443, or * for any; default none")
    viewer_bind: str = _setting("127.0.0.1", "address of the neuroglancer server behind /view/ (ndex serve "
                                             "passes its --host)")
    viewer_port: int = _setting(0, "TCP port of the neuroglancer server behind /view/ (0: any free port)")

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{Path(self.data_dir).resolve() / 'ndex.sqlite'}"

    @property
    def volume_url(self) -> str:
        return self.store_url or str(Path(self.data_dir).resolve() / "store")

    @property
    def sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def upgrade_hint(self) -> str:
        """The flags of `ndex upgrade` for this data (named in messages that ask for it)."""
        flags = [f"--data {self.data_dir}"]
        if self.db_url:
            flags.append("--db URL")  # not the URL: it may carry a password
        if self.store_url:
            flags.append(f"--store {self.store_url}")
        return " ".join(flags)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServerSettings:
        return cls(**json.loads(text))


def help_of(name: str) -> str:
    """The help text of one setting (for CLI flags)."""
    return next(f.metadata["help"] for f in dataclasses.fields(ServerSettings) if f.name == name)

"""The server's SQL schema (SQLAlchemy Core): resources, users, tokens, groups, permissions, metadata.

Deletes are hard (boss-api.md 2.8 allows it); `ON DELETE CASCADE` is not relied on because SQLite
only honours it with a pragma, so the catalog removes dependants itself. Ids are never handed out twice
(`sqlite_autoincrement`; PostgreSQL sequences never go back), so nothing keyed by a deleted row's id can
reach a new row; a channel's voxels live under its own random `store_key`, which outlives even a
database that is recreated beside an old store.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()
NAME = 255
FRESH_IDS: dict[str, Any] = {"sqlite_autoincrement": True}  # SQLite would reuse the id of a deleted last row

users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(NAME), nullable=False, unique=True),
    Column("first_name", String(NAME), nullable=False, default=""),
    Column("last_name", String(NAME), nullable=False, default=""),
    Column("email", String(NAME), nullable=False, default=""),
    Column("created", Float, nullable=False),
    **FRESH_IDS,
)

user_roles = Table(
    "user_roles", metadata,
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("role", String(32), primary_key=True),
)

tokens = Table(
    "tokens", metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 hex; the token itself is never stored
    Column("created", Float, nullable=False),
    **FRESH_IDS,
)

groups = Table(
    "groups", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(NAME), nullable=False, unique=True),
    Column("owner", String(NAME), nullable=False, default=""),
    # set on a user's personal group (`<user>-primary`): the group is bound to that user's id, not its name
    Column("personal_of", Integer, ForeignKey("users.id"), nullable=True, unique=True),
    **FRESH_IDS,
)

group_members = Table(
    "group_members", metadata,
    Column("group_id", Integer, ForeignKey("groups.id"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
)

group_maintainers = Table(
    "group_maintainers", metadata,
    Column("group_id", Integer, ForeignKey("groups.id"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
)

collections = Table(
    "collections", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(NAME), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("public", Boolean, nullable=False, default=False),
    Column("creator", String(NAME), nullable=False),
    **FRESH_IDS,
)

frames = Table(
    "frames", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(NAME), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    # 64-bit: a frame may be deeper than 2**31 voxels (fields.MAX_EXTENT bounds what a request may ask)
    *(Column(f"{a}_{b}", BigInteger, nullable=False) for a in "xyz" for b in ("start", "stop")),
    *(Column(f"{a}_voxel_size", Float, nullable=False) for a in "xyz"),
    Column("voxel_unit", String(32), nullable=False),
    Column("creator", String(NAME), nullable=False),
    **FRESH_IDS,
)

experiments = Table(
    "experiments", metadata,
    Column("id", Integer, primary_key=True),
    Column("collection_id", Integer, ForeignKey("collections.id"), nullable=False),
    Column("name", String(NAME), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("public", Boolean, nullable=False, default=False),
    Column("frame_id", Integer, ForeignKey("frames.id"), nullable=False),
    Column("num_hierarchy_levels", Integer, nullable=False),
    Column("hierarchy_method", String(32), nullable=False),
    Column("num_time_samples", Integer, nullable=False),
    Column("time_step", Integer, nullable=True),
    Column("time_step_unit", String(32), nullable=True),
    Column("creator", String(NAME), nullable=False),
    UniqueConstraint("collection_id", "name"),
    **FRESH_IDS,
)

channels = Table(
    "channels", metadata,
    Column("id", Integer, primary_key=True),
    Column("experiment_id", Integer, ForeignKey("experiments.id"), nullable=False),
    Column("name", String(NAME), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("public", Boolean, nullable=False, default=False),
    Column("type", String(16), nullable=False),
    Column("datatype", String(16), nullable=False),
    Column("default_time_sample", Integer, nullable=False),
    Column("base_resolution", Integer, nullable=False),
    Column("downsample_status", String(32), nullable=False),
    Column("storage_type", String(16), nullable=False),
    Column("bucket", String(NAME), nullable=True),
    Column("cv_path", String(NAME), nullable=True),
    Column("creator", String(NAME), nullable=False),
    Column("next_id", BigInteger, nullable=False, default=1),  # reserve-ids counter (1..2**63-1)
    Column("store_key", String(64), nullable=False, unique=True),  # where its voxels live; never reused
    UniqueConstraint("experiment_id", "name"),
    **FRESH_IDS,
)

channel_links = Table(
    "channel_links", metadata,
    Column("channel_id", Integer, ForeignKey("channels.id"), primary_key=True),
    Column("other_id", Integer, ForeignKey("channels.id"), primary_key=True),
    Column("kind", String(8), primary_key=True),  # "source" | "related"
)

permissions = Table(
    "permissions", metadata,
    Column("group_id", Integer, ForeignKey("groups.id"), primary_key=True),
    Column("kind", String(16), primary_key=True),  # collection | experiment | channel | frame
    Column("obj_id", Integer, primary_key=True),
    Column("perm", String(32), primary_key=True),
)

meta = Table(
    "meta", metadata,
    Column("kind", String(16), primary_key=True),
    Column("obj_id", Integer, primary_key=True),
    Column("key", String(NAME), primary_key=True),
    Column("value", Text, nullable=False),
)

# Which process runs a channel's downsample job, until when (the database's clock, seconds since the
# epoch) and how far it got. A row whose lease expired belongs to a process that stopped: another takes
# the job over. A table of its own (not columns of `channels`) so that create_all adds it to an
# existing database. No foreign key: a lease outlives nothing but is cleaned up by its job.
downsample_leases = Table(
    "downsample_leases", metadata,
    Column("channel_id", Integer, primary_key=True),
    Column("owner", String(128), nullable=False),
    Column("expires", Float, nullable=False),
    Column("done", Integer, nullable=False, default=0),
    Column("total", Integer, nullable=False, default=0),
)

"""Collections, coordinate frames, experiments and channels: lookups, create/get/update/delete, lists.

Permission rules are those of boss-api.md 2.7; responses carry the keys and key order of 2.3-2.6.
Every write clears the channel cache so that this process never serves a stale channel.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, Table, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ndex.server.auth import Authorizer, Identity, perms_for
from ndex.server.channels import ChannelInfo, new_store_key
from ndex.server.db import Database
from ndex.server.fields import check_name, clean_post, clean_put
from ndex.server.http_errors import INTEGRITY_ERROR, MISSING_PERMISSION, BossError, invalid, not_found
from ndex.server.schema import channel_links, channels, collections, experiments, frames, meta, permissions
from ndex.server.ttlcache import TTLCache
from ndex.server.users import ADMIN_GROUP, group_id, personal_group_id
from ndex.server.values import MAX_ID

TABLES: dict[str, Table] = {"collection": collections, "experiment": experiments, "channel": channels,
                            "frame": frames}
PARENT_ID = {"experiment": experiments.c.collection_id, "channel": channels.c.experiment_id}
MANAGER = ("resource-manager",)


def _exists(what: str, name: str) -> BossError:
    return invalid(f"{what} {name!r} already exists: pick another name or update the existing one")


def row_dict(row) -> dict[str, Any]:
    return dict(row._mapping)


@dataclass(frozen=True)
class Resolved:
    """The rows a collection[/experiment[/channel]] path names, parents included: the lookup already read
    them, so the JSON and the checks that need a parent take it from here instead of selecting it again."""

    collection: dict[str, Any]
    experiment: dict[str, Any] | None = None
    channel: dict[str, Any] | None = None

    @property
    def kind(self) -> str:
        return "channel" if self.channel is not None else "experiment" if self.experiment is not None \
            else "collection"

    @property
    def row(self) -> dict[str, Any]:
        """The named object itself (the last row of the path)."""
        return getattr(self, self.kind)


class Catalog:
    def __init__(self, db: Database, auth: Authorizer, *, allow_sourceless_annotations: bool = False,
                 cache_seconds: float = 2.0,
                 on_channel_deleted: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.db = db
        self.auth = auth
        self.allow_sourceless = allow_sourceless_annotations
        self.cache: TTLCache[ChannelInfo] = TTLCache(cache_seconds)
        self.on_channel_deleted = on_channel_deleted or (lambda _id: None)

    # --- lookups -------------------------------------------------------------------------------

    def _one(self, conn: Connection, table: Table, what: str, *where) -> dict[str, Any]:
        row = conn.execute(select(table).where(*where)).first()
        if row is None:
            raise not_found(what)
        return row_dict(row)

    def _collection(self, conn, c: str) -> dict:
        return self._one(conn, collections, f"collection {c!r}", collections.c.name == c)

    def _experiment(self, conn, coll: dict, e: str) -> dict:
        return self._one(conn, experiments, f"experiment {coll['name']}/{e}",
                         experiments.c.collection_id == coll["id"], experiments.c.name == e)

    def _channel(self, conn, coll: dict, exp: dict, ch: str) -> dict:
        return self._one(conn, channels, f"channel {coll['name']}/{exp['name']}/{ch}",
                         channels.c.experiment_id == exp["id"], channels.c.name == ch)

    def _frame(self, conn, name: str) -> dict:
        return self._one(conn, frames, f"coordinate frame {name!r}", frames.c.name == name)

    def resolve(self, conn, c: str, e: str | None = None, ch: str | None = None) -> Resolved:
        """The object a collection[/experiment[/channel]] path names, with its parents (one SELECT a level)."""
        coll = self._collection(conn, c)
        if e is None:
            return Resolved(coll)
        exp = self._experiment(conn, coll, e)
        if ch is None:
            return Resolved(coll, exp)
        return Resolved(coll, exp, self._channel(conn, coll, exp, ch))

    def channel_info(self, c: str, e: str, ch: str) -> ChannelInfo:
        """The channel with its parents and frame; cached briefly (data routes call this per request)."""
        return self.cache.get((c, e, ch), lambda: self._load_info(c, e, ch))

    def _load_info(self, c: str, e: str, ch: str) -> ChannelInfo:
        with self.db.begin() as conn:
            found = self.resolve(conn, c, e, ch)
            assert found.experiment is not None and found.channel is not None  # a channel path resolved
            frame = self._one(conn, frames, "coordinate frame", frames.c.id == found.experiment["frame_id"])
        return ChannelInfo(found.collection, found.experiment, frame, found.channel)

    def changed(self) -> None:
        self.cache.clear()

    # --- visibility ----------------------------------------------------------------------------

    def _readable(self, conn, ident: Identity, kind: str, rows: list[dict]) -> list[dict]:
        if ident.admin:
            return rows
        granted = {r[0] for r in conn.execute(select(permissions.c.obj_id).where(
            permissions.c.kind == kind, permissions.c.perm == "read",
            permissions.c.group_id.in_(ident.groups or {-1})))}
        return [r for r in rows if r.get("public") or r["id"] in granted]

    def _names(self, conn, ident, kind: str, parent: dict | None = None, *, all_if_public_parent: bool = False
               ) -> list[str]:
        """Names of the `kind` objects under `parent` (every collection when None) the caller may see.

        boss-api.md 2.1: lists show the children that are public or readable; 2.3/2.5: a public
        parent's own JSON names all its children (`all_if_public_parent`).
        """
        table = TABLES[kind]
        query = select(table).order_by(table.c.id)
        if parent is not None:
            query = query.where(PARENT_ID[kind] == parent["id"])
        rows = [row_dict(r) for r in conn.execute(query)]
        if not (all_if_public_parent and parent is not None and parent.get("public")):
            rows = self._readable(conn, ident, kind, rows)
        return [r["name"] for r in rows]

    # --- JSON ------------------------------------------------------------------------------------

    def collection_json(self, conn, ident, coll: dict) -> dict:
        exps = self._names(conn, ident, "experiment", coll, all_if_public_parent=True)
        return {"name": coll["name"], "public": coll["public"], "description": coll["description"],
                "experiments": exps, "creator": coll["creator"]}

    @staticmethod
    def frame_json(f: dict) -> dict:
        out = {"name": f["name"], "description": f["description"]}
        out.update({f"{a}_{b}": f[f"{a}_{b}"] for a in "xyz" for b in ("start", "stop")})
        out.update({f"{a}_voxel_size": float(f[f"{a}_voxel_size"]) for a in "xyz"})
        out["voxel_unit"] = f["voxel_unit"]
        return out

    def experiment_json(self, conn, ident, coll: dict, exp: dict) -> dict:
        chans = self._names(conn, ident, "channel", exp, all_if_public_parent=True)
        frame = conn.execute(select(frames.c.name).where(frames.c.id == exp["frame_id"])).scalar()
        keys = ("num_hierarchy_levels", "hierarchy_method", "num_time_samples", "time_step", "time_step_unit")
        return {"channels": chans, "name": exp["name"], "public": exp["public"], "description": exp["description"],
                "collection": coll["name"], "coord_frame": frame, **{k: exp[k] for k in keys},
                "creator": exp["creator"]}

    def channel_json(self, conn, exp: dict, chan: dict) -> dict:
        links: dict[str, list[str]] = {"source": [], "related": []}
        rows = conn.execute(select(channel_links.c.kind, channels.c.name)
                            .join(channels, channels.c.id == channel_links.c.other_id)
                            .where(channel_links.c.channel_id == chan["id"]).order_by(channels.c.id))
        for kind, name in rows:
            links[kind].append(name)
        return {"name": chan["name"], "public": chan["public"], "description": chan["description"],
                "experiment": exp["name"], "default_time_sample": chan["default_time_sample"], "type": chan["type"],
                "base_resolution": chan["base_resolution"], "datatype": chan["datatype"], "creator": chan["creator"],
                "sources": links["source"], "downsample_status": chan["downsample_status"],
                "related": links["related"], "storage_type": chan["storage_type"], "bucket": chan["bucket"],
                "cv_path": chan["cv_path"]}

    # --- create ----------------------------------------------------------------------------------

    def _unique(self, conn, table: Table, name: str, what: str, *scope) -> None:
        if conn.execute(select(table.c.id).where(table.c.name == name, *scope)).first() is not None:
            raise _exists(what, name)

    def _grant_all(self, conn, ident: Identity, kind: str, obj_id: int) -> None:
        for gid in (personal_group_id(conn, ident.user_id), group_id(conn, ADMIN_GROUP)):
            if gid is not None:
                conn.execute(insert(permissions), [{"group_id": gid, "kind": kind, "obj_id": obj_id, "perm": p}
                                                   for p in perms_for(kind)])
        self.auth.forget()

    def _insert(self, conn, ident, kind: str, values: dict) -> dict:
        try:
            new_id = conn.execute(insert(TABLES[kind]).values(creator=ident.username, **values)).inserted_primary_key[0]
        except IntegrityError:
            # another process created the same name between _unique's check and this insert: the unique
            # constraint decides, and the loser hears what it would have heard a moment later
            raise _exists("coordinate frame" if kind == "frame" else kind, values["name"]) from None
        self._grant_all(conn, ident, kind, new_id)
        return self._one(conn, TABLES[kind], kind, TABLES[kind].c.id == new_id)

    def create_collection(self, ident: Identity, c: str, body: Any) -> dict:
        self.auth.require_role(ident, *MANAGER)
        values = clean_post("collection", body)
        with self.db.begin() as conn:
            self._unique(conn, collections, check_name(c), "collection")
            coll = self._insert(conn, ident, "collection", {"name": c, **values})
            return self.collection_json(conn, ident, coll)

    def create_frame(self, ident: Identity, name: str, body: Any) -> dict:
        self.auth.require_role(ident, *MANAGER)
        values = clean_post("frame", body)
        for a in "xyz":
            if values[f"{a}_start"] >= values[f"{a}_stop"]:
                raise invalid(f"{a}_start must be less than {a}_stop (stop is exclusive)")
        with self.db.begin() as conn:
            self._unique(conn, frames, check_name(name), "coordinate frame")
            return self.frame_json(self._insert(conn, ident, "frame", {"name": name, **values}))

    def create_experiment(self, ident: Identity, c: str, e: str, body: Any) -> dict:
        self.auth.require_role(ident, *MANAGER)
        values = clean_post("experiment", body)
        with self.db.begin() as conn:
            coll = self._collection(conn, c)
            self.auth.require(ident, "collection", coll["id"], "add", name=c)
            frame = self._frame(conn, values.pop("coord_frame"))
            self._unique(conn, experiments, check_name(e), "experiment", experiments.c.collection_id == coll["id"])
            exp = self._insert(conn, ident, "experiment",
                               {"name": e, "collection_id": coll["id"], "frame_id": frame["id"], **values})
            return self.experiment_json(conn, ident, coll, exp)

    def create_channel(self, ident: Identity, c: str, e: str, ch: str, body: Any) -> dict:
        self.auth.require_role(ident, *MANAGER)
        values = clean_post("channel", body)
        with self.db.begin() as conn:
            coll = self._collection(conn, c)
            exp = self._experiment(conn, coll, e)
            self.auth.require(ident, "experiment", exp["id"], "add", name=f"{c}/{e}")
            self._unique(conn, channels, check_name(ch), "channel", channels.c.experiment_id == exp["id"])
            self._check_admin_fields(ident, values)
            if values["default_time_sample"] >= exp["num_time_samples"]:
                raise invalid(f"default_time_sample {values['default_time_sample']} must be less than the "
                              f"experiment's num_time_samples ({exp['num_time_samples']})")
            links = self._links(conn, exp, None, values.pop("sources"), values.pop("related"))
            if values["type"] == "annotation" and not links["source"] and not self.allow_sourceless:
                raise invalid("annotation channels need a source: list the image channel(s) they annotate in "
                              "'sources' (or start the server with allow_sourceless_annotations)")
            chan = self._insert(conn, ident, "channel", {"name": ch, "experiment_id": exp["id"],
                                                         "store_key": new_store_key(), **values})
            self._write_links(conn, chan["id"], links)
            self.changed()
            return self.channel_json(conn, exp, chan)

    @staticmethod
    def _check_admin_fields(ident: Identity, values: dict) -> None:
        if not ident.admin and (values.get("bucket") or values.get("cv_path")):
            raise BossError(MISSING_PERMISSION, "only admins may set bucket or cv_path")

    def _links(self, conn, exp: dict, self_id: int | None, sources, related) -> dict[str, list[int]]:
        """Channel ids named by sources/related (same experiment, existing, not overlapping)."""
        overlap = set(sources or ()) & set(related or ())
        if overlap:
            raise invalid(f"channel(s) {', '.join(sorted(overlap))} cannot be both a source and related")
        out: dict[str, list[int]] = {}
        for kind, names in (("source", sources), ("related", related)):
            ids = []
            for name in names or ():
                cid = conn.execute(select(channels.c.id).where(channels.c.experiment_id == exp["id"],
                                                               channels.c.name == name)).scalar()
                if cid is None or cid == self_id:
                    raise invalid(f"{kind} channel {name!r} is not another channel of experiment {exp['name']}")
                ids.append(cid)
            out[kind] = ids
        return out

    @staticmethod
    def _write_links(conn, chan_id: int, links: dict[str, list[int]]) -> None:
        for kind, ids in links.items():
            conn.execute(delete(channel_links).where(channel_links.c.channel_id == chan_id, channel_links.c.kind == kind))
            if ids:
                conn.execute(insert(channel_links), [{"channel_id": chan_id, "other_id": i, "kind": kind} for i in ids])

    # --- get ---------------------------------------------------------------------------------------

    def get(self, ident: Identity, c: str, e: str | None = None, ch: str | None = None) -> dict:
        with self.db.begin() as conn:
            found = self.resolve(conn, c, e, ch)
            row = found.row
            self.auth.require(ident, found.kind, row["id"], "read", public=row["public"],
                              name="/".join(filter(None, (c, e, ch))))
            return self._json(conn, ident, found)

    def _json(self, conn, ident, found: Resolved) -> dict:
        if found.kind == "collection":
            return self.collection_json(conn, ident, found.collection)
        assert found.experiment is not None  # an experiment or a channel: its experiment was resolved
        if found.channel is None:
            return self.experiment_json(conn, ident, found.collection, found.experiment)
        return self.channel_json(conn, found.experiment, found.channel)

    def get_frame(self, name: str) -> dict:
        with self.db.begin() as conn:
            return self.frame_json(self._frame(conn, name))

    # --- update --------------------------------------------------------------------------------------

    def update(self, ident: Identity, c: str, e: str | None, ch: str | None, body: Any) -> dict:
        kind = "channel" if ch else "experiment" if e else "collection"
        values = clean_put(kind, body)
        with self.db.begin() as conn:
            found = self.resolve(conn, c, e, ch)
            row = found.row
            self.auth.require(ident, kind, row["id"], "update", name="/".join(filter(None, (c, e, ch))))
            if kind == "channel":
                assert found.experiment is not None  # a channel's path resolves its experiment
                self._prepare_channel_update(conn, ident, found.experiment, row, values)
            if "name" in values and values["name"] != row["name"]:
                scope = {"collection": (), "experiment": (experiments.c.collection_id == row.get("collection_id"),),
                         "channel": (channels.c.experiment_id == row.get("experiment_id"),)}[kind]
                self._unique(conn, TABLES[kind], values["name"], kind, *scope)
            if values:
                conn.execute(update(TABLES[kind]).where(TABLES[kind].c.id == row["id"]).values(**values))
            self.changed()
            updated = self._one(conn, TABLES[kind], kind, TABLES[kind].c.id == row["id"])
            return self._json(conn, ident, replace(found, **{kind: updated}))  # parents are unchanged

    def _prepare_channel_update(self, conn, ident, exp: dict, chan: dict, values: dict) -> None:
        self._check_admin_fields(ident, values)
        if "sources" in values or "related" in values:
            current = self.channel_json(conn, exp, chan)
            sources = values.pop("sources", current["sources"])
            related = values.pop("related", current["related"])
            self._write_links(conn, chan["id"], self._links(conn, exp, chan["id"], sources, related))

    def update_frame(self, ident: Identity, name: str, body: Any) -> dict:
        values = clean_put("frame", body)
        with self.db.begin() as conn:
            frame = self._frame(conn, name)
            self.auth.require(ident, "frame", frame["id"], "update", name=name)
            if "name" in values and values["name"] != name:
                self._unique(conn, frames, values["name"], "coordinate frame")
            if values:
                conn.execute(update(frames).where(frames.c.id == frame["id"]).values(**values))
            self.changed()
            return self.frame_json(self._one(conn, frames, "frame", frames.c.id == frame["id"]))

    # --- delete --------------------------------------------------------------------------------------

    def delete(self, ident: Identity, c: str, e: str | None = None, ch: str | None = None) -> None:
        self.auth.require_role(ident, *MANAGER)
        with self.db.begin() as conn:
            found = self.resolve(conn, c, e, ch)
            kind, row = found.kind, found.row
            self.auth.require(ident, kind, row["id"], "delete", name="/".join(filter(None, (c, e, ch))))
            self._guard(conn, kind, row)
            self._drop(conn, kind, row["id"])
        self.changed()
        if kind == "channel":
            self.on_channel_deleted(row)

    def delete_frame(self, ident: Identity, name: str) -> None:
        self.auth.require_role(ident, *MANAGER)
        with self.db.begin() as conn:
            frame = self._frame(conn, name)
            self.auth.require(ident, "frame", frame["id"], "delete", name=name)
            self._guard(conn, "frame", frame)
            self._drop(conn, "frame", frame["id"])
        self.changed()

    def _guard(self, conn, kind: str, row: dict) -> None:
        """BOSS's delete guards (400/4003): never orphan children or break a source reference."""
        checks = {
            "collection": (experiments, experiments.c.collection_id == row["id"], "it still has experiments"),
            "experiment": (channels, channels.c.experiment_id == row["id"], "it still has channels"),
            "frame": (experiments, experiments.c.frame_id == row["id"], "experiments still use it"),
            "channel": (channel_links, (channel_links.c.other_id == row["id"]) & (channel_links.c.kind == "source"),
                        "other channels list it as a source"),
        }
        table, where, why = checks[kind]
        if conn.execute(select(table).where(where).limit(1)).first() is not None:
            raise BossError(INTEGRITY_ERROR, f"cannot delete {kind} {row['name']!r}: {why}; delete those first")

    @staticmethod
    def _drop(conn, kind: str, obj_id: int) -> None:
        conn.execute(delete(permissions).where(permissions.c.kind == kind, permissions.c.obj_id == obj_id))
        conn.execute(delete(meta).where(meta.c.kind == kind, meta.c.obj_id == obj_id))
        if kind == "channel":
            conn.execute(delete(channel_links).where(or_(channel_links.c.channel_id == obj_id,
                                                         channel_links.c.other_id == obj_id)))
        conn.execute(delete(TABLES[kind]).where(TABLES[kind].c.id == obj_id))

    # --- lists ----------------------------------------------------------------------------------------

    def list_names(self, ident: Identity, *path: str) -> list[str]:
        """The collections (no path), a collection's experiments or an experiment's channels the caller may see."""
        kind = ("collection", "experiment", "channel")[len(path)]
        with self.db.begin() as conn:
            parent = self.resolve(conn, *path).row if path else None
            return self._names(conn, ident, kind, parent)

    def list_collections(self, ident: Identity) -> list[str]:
        return self.list_names(ident)

    def list_experiments(self, ident: Identity, c: str) -> list[str]:
        return self.list_names(ident, c)

    def list_channels(self, ident: Identity, c: str, e: str) -> list[str]:
        return self.list_names(ident, c, e)

    def list_frames(self, owner_only: str | None = None) -> list[str]:
        query = select(frames.c.name).order_by(frames.c.id)
        if owner_only:
            query = query.where(frames.c.creator == owner_only)
        with self.db.begin() as conn:
            return [r[0] for r in conn.execute(query)]

    # --- channel state used by the data routes ----------------------------------------------------

    def set_status(self, chan_id: int, status: str, *, only_if: tuple[str, ...] = ()) -> bool:
        """Set downsample_status (optionally only from given states); True if a row changed."""
        query = update(channels).where(channels.c.id == chan_id)
        if only_if:
            query = query.where(channels.c.downsample_status.in_(only_if))
        with self.db.begin() as conn:
            changed = conn.execute(query.values(downsample_status=status)).rowcount > 0
        if changed:
            self.changed()
        return changed

    def live(self, channel: dict[str, Any]) -> bool:
        """Does the channel still exist? (By its store key: a new channel of the same name is another one.)"""
        query = select(channels.c.id).where(channels.c.store_key == channel["store_key"])
        with self.db.begin() as conn:
            return conn.execute(query).first() is not None

    def status(self, chan_id: int) -> str | None:
        with self.db.begin() as conn:
            return conn.execute(select(channels.c.downsample_status).where(channels.c.id == chan_id)).scalar()

    def reserve_ids(self, chan_id: int, count: int) -> int:
        """Advance the channel's id counter by `count`; returns the first reserved id (counter starts at 1)."""
        with self.db.begin() as conn:  # UPDATE first: the row lock makes concurrent reservations disjoint
            moved = conn.execute(update(channels).where(channels.c.id == chan_id,
                                                        channels.c.next_id <= MAX_ID - count)
                                 .values(next_id=channels.c.next_id + count)).rowcount
            if not moved:  # past a BIGINT, PostgreSQL fails the UPDATE and SQLite turns the counter into a float
                raise invalid(f"reserving {count} more ids would pass id {MAX_ID}: reserve fewer")
            return conn.execute(select(channels.c.next_id).where(channels.c.id == chan_id)).scalar_one() - count

"""Groups, their members and maintainers, and the permission sets granted to them (boss-api.md 9.2, 9.3)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Table, delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from ndex.server.auth import BASE_PERMS, PUBLIC_READS, Authorizer, Identity, perms_for
from ndex.server.catalog import MANAGER, Catalog
from ndex.server.fields import check_name
from ndex.server.http_errors import (
    BAD_REQUEST,
    GROUP_EXISTS,
    GROUP_NOT_FOUND,
    INVALID_POST_ARGUMENT,
    INVALID_URL,
    MISSING_PERMISSION,
    MISSING_ROLE,
    UNABLE_TO_VALIDATE,
    BossError,
)
from ndex.server.schema import (
    channels,
    collections,
    experiments,
    group_maintainers,
    group_members,
    groups,
    permissions,
    users,
)
from ndex.server.users import ADMIN_GROUP, PERSONAL_SUFFIX, PUBLIC_GROUP, known_user_id, reserved_name
from ndex.server.values import check_text

BUILTIN = (ADMIN_GROUP, PUBLIC_GROUP)
ROSTERS = {"members": group_members, "maintainers": group_maintainers}


class GroupService:
    def __init__(self, catalog: Catalog, auth: Authorizer) -> None:
        self.catalog = catalog
        self.db = catalog.db
        self.auth = auth

    # --- groups ----------------------------------------------------------------------------------

    def _group(self, conn, name: str, *, lock: bool = False) -> dict:
        """The group row; `lock` holds it (PostgreSQL row lock) until the transaction ends, so that
        permission changes of one group from several server processes run one after the other."""
        query = select(groups).where(groups.c.name == name)
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise BossError(GROUP_NOT_FOUND, f"group {name!r} does not exist: `GET /v1/groups/` lists yours")
        return dict(row._mapping)

    def _in(self, conn, roster: str, gid: int, uid: int | None) -> bool:
        table = ROSTERS[roster]
        return uid is not None and conn.execute(select(table).where(table.c.group_id == gid,
                                                                    table.c.user_id == uid)).first() is not None

    def _require_insider(self, conn, ident: Identity, group: dict) -> None:
        if ident.admin or self._in(conn, "members", group["id"], ident.user_id) or \
                self._in(conn, "maintainers", group["id"], ident.user_id):
            return
        raise BossError(MISSING_PERMISSION, f"{ident.username} is neither a member nor a maintainer of group "
                                            f"{group['name']}")

    def _require_maintainer(self, conn, ident: Identity, group: dict) -> None:
        if group["name"] in BUILTIN:
            raise BossError(BAD_REQUEST, f"the membership of group {group['name']!r} cannot be changed here")
        if reserved_name(group["name"]):
            raise BossError(BAD_REQUEST, f"group {group['name']!r} is a user's own group: nobody joins it or "
                                         "maintains it; share with a group of your own instead")
        if not (ident.admin or self._in(conn, "maintainers", group["id"], ident.user_id)):
            raise BossError(MISSING_PERMISSION, f"{ident.username} does not maintain group {group['name']}")

    def list_groups(self, ident: Identity, filtr: str | None) -> list[str]:
        if filtr not in (None, "member", "maintainer"):
            raise BossError(UNABLE_TO_VALIDATE, f"filter {filtr!r} must be member or maintainer")
        wanted = ["members", "maintainers"] if filtr is None else [filtr + "s"]
        with self.db.begin() as conn:
            names: dict[str, None] = {}
            for roster in wanted:
                table = ROSTERS[roster]
                rows = conn.execute(select(groups.c.name).join(table, table.c.group_id == groups.c.id)
                                    .where(table.c.user_id == (ident.user_id or -1)).order_by(groups.c.id))
                names.update((r[0], None) for r in rows)
            return list(names)

    def get_group(self, ident: Identity, name: str) -> dict:
        with self.db.begin() as conn:
            group = self._group(conn, name)
            self._require_insider(conn, ident, group)
            sets = self._sets(conn, [group["id"]], None)
        return {"name": name, "owner": group["owner"],
                "resources": [{k: v for k, v in s.items() if k in ("collection", "experiment", "channel")}
                              for s in sets]}

    def create_group(self, ident: Identity, name: str) -> None:
        self.auth.require_role(ident, *MANAGER)
        check_name(name, "group name")
        if reserved_name(name):
            raise BossError(BAD_REQUEST, f"group names ending in {PERSONAL_SUFFIX!r} are reserved for users' own "
                                         "groups, which are made with the user: pick another name")
        with self.db.begin() as conn:
            if conn.execute(select(groups.c.id).where(groups.c.name == name)).first() is not None:
                raise BossError(GROUP_EXISTS, f"group {name!r} already exists")
            gid = conn.execute(insert(groups).values(name=name, owner=ident.username)).inserted_primary_key[0]  # type: ignore[index]
            if ident.user_id is not None:
                conn.execute(insert(group_members).values(group_id=gid, user_id=ident.user_id))
                conn.execute(insert(group_maintainers).values(group_id=gid, user_id=ident.user_id))
        self.auth.forget()

    def delete_group(self, ident: Identity, name: str) -> None:
        self.auth.require_role(ident, *MANAGER)
        with self.db.begin() as conn:
            group = self._group(conn, name)
            if name in BUILTIN:
                raise BossError(BAD_REQUEST, f"group {name!r} is built in and cannot be deleted")
            if group["personal_of"] is not None:
                raise BossError(BAD_REQUEST, f"group {name!r} is a user's own group: it goes when the user is "
                                             "deleted")
            if not (ident.admin or group["owner"] == ident.username):
                raise BossError(MISSING_ROLE, f"only the creator of group {name} or an admin may delete it")
            for table in (group_members, group_maintainers, permissions):
                conn.execute(delete(table).where(table.c.group_id == group["id"]))
            conn.execute(delete(groups).where(groups.c.id == group["id"]))
        self.auth.forget()

    # --- members and maintainers -------------------------------------------------------------------

    def roster(self, ident: Identity, name: str, roster: str) -> list[str]:
        """BOSS's rule: a resource-manager who is a member or maintainer of the group, or an admin."""
        self.auth.require_role(ident, *MANAGER)
        table = ROSTERS[roster]
        with self.db.begin() as conn:
            group = self._group(conn, name)
            self._require_insider(conn, ident, group)
            rows = conn.execute(select(users.c.username).join(table, table.c.user_id == users.c.id)
                                .where(table.c.group_id == group["id"]).order_by(users.c.username))
            return [r[0] for r in rows]

    def is_in(self, ident: Identity, name: str, roster: str, username: str) -> bool:
        self.auth.require_role(ident, *MANAGER)
        with self.db.begin() as conn:
            group = self._group(conn, name)
            self._require_insider(conn, ident, group)
            return self._in(conn, roster, group["id"], known_user_id(conn, username))

    def add_to(self, ident: Identity, name: str, roster: str, username: str) -> None:
        self.auth.require_role(ident, *MANAGER)
        with self.db.begin() as conn:
            group = self._group(conn, name)
            uid = known_user_id(conn, username)
            self._require_maintainer(conn, ident, group)
            if not self._in(conn, roster, group["id"], uid):
                conn.execute(insert(ROSTERS[roster]).values(group_id=group["id"], user_id=uid))
        self.auth.forget()

    def remove_from(self, ident: Identity, name: str, roster: str, username: str) -> None:
        self.auth.require_role(ident, *MANAGER)
        with self.db.begin() as conn:
            group = self._group(conn, name)
            uid = known_user_id(conn, username)
            self._require_maintainer(conn, ident, group)
            if roster == "maintainers" and not self._in(conn, roster, group["id"], uid):
                raise BossError(MISSING_PERMISSION, f"{username} is not a maintainer of group {name}")
            table = ROSTERS[roster]
            conn.execute(delete(table).where(table.c.group_id == group["id"], table.c.user_id == uid))
        self.auth.forget()

    # --- permission sets -----------------------------------------------------------------------------

    def _target(self, conn, params: dict[str, Any], missing_code: int) -> tuple[str, dict]:
        if not params.get("collection"):
            raise BossError(missing_code, "a collection (and optionally experiment and channel) is required")
        if params.get("channel") and not params.get("experiment"):
            raise BossError(missing_code, "a channel needs its experiment")
        found = self.catalog.resolve(conn, params["collection"], params.get("experiment") or None,
                                     params.get("channel") or None)
        return found.kind, found.row

    def _sets(self, conn, gids: list[int], target: tuple[str, int] | None) -> list[dict]:
        query = select(permissions, groups.c.name.label("group")).join(groups, groups.c.id == permissions.c.group_id)\
            .where(permissions.c.group_id.in_(gids or [-1]), permissions.c.kind != "frame")
        if target is not None:
            query = query.where(permissions.c.kind == target[0], permissions.c.obj_id == target[1])
        sets: dict[tuple, dict] = {}
        for r in conn.execute(query.order_by(permissions.c.group_id, permissions.c.kind, permissions.c.obj_id)):
            key = (r.group, r.kind, r.obj_id)
            if key not in sets:
                sets[key] = {"group": r.group, "kind": r.kind, **self._names(conn, r.kind, r.obj_id), "permissions": []}
            sets[key]["permissions"].append(r.perm)
        order = {"collection": 0, "experiment": 1, "channel": 2}
        return sorted(sets.values(), key=lambda s: (s["group"], order[s["kind"]]))

    @staticmethod
    def _names(conn, kind: str, obj_id: int) -> dict[str, str]:
        if kind == "collection":
            return {"collection": conn.execute(select(collections.c.name).where(collections.c.id == obj_id)).scalar()}
        if kind == "experiment":
            r = conn.execute(select(collections.c.name.label("c"), experiments.c.name.label("e"))
                             .join(collections, collections.c.id == experiments.c.collection_id)
                             .where(experiments.c.id == obj_id)).first()
            return {"collection": r.c, "experiment": r.e}
        r = conn.execute(select(collections.c.name.label("c"), experiments.c.name.label("e"), channels.c.name.label("ch"))
                         .join(experiments, experiments.c.id == channels.c.experiment_id)
                         .join(collections, collections.c.id == experiments.c.collection_id)
                         .where(channels.c.id == obj_id)).first()
        return {"collection": r.c, "experiment": r.e, "channel": r.ch}

    def list_permissions(self, ident: Identity, params: dict[str, str]) -> list[dict]:
        with self.db.begin() as conn:
            if params.get("group"):
                group = self._group(conn, params["group"])
                self._require_insider(conn, ident, group)
                gids = [group["id"]]
            else:
                gids = sorted(ident.groups)
            target = None
            if params.get("collection"):
                kind, row = self._target(conn, params, INVALID_URL)
                target = (kind, row["id"])
            sets = self._sets(conn, gids, target)
        if target is None:
            # BOSS quirk (intern's permission suite checks it): a listing not filtered by resource shows only
            # the six object permissions; the volumetric ones appear when the resource is named
            sets = [{**s, "permissions": [p for p in s["permissions"] if p in BASE_PERMS]} for s in sets]
            sets = [s for s in sets if s["permissions"]]
        return [{k: v for k, v in s.items() if k != "kind"} for s in sets]

    def _prepare(self, conn, ident: Identity, body: Any, missing_code: int, needed: tuple[str, ...]):
        if not isinstance(body, dict) or not body.get("group") or "permissions" not in body:
            raise BossError(missing_code, "send JSON with group, collection[, experiment[, channel]] and permissions")
        for key in ("group", "collection", "experiment", "channel"):
            if body.get(key) is not None:
                check_text(body[key], key)  # a name, not a list or a number
        self.auth.require_role(ident, *MANAGER)
        group = self._group(conn, body["group"], lock=True)
        self._require_insider(conn, ident, group)
        kind, row = self._target(conn, body, missing_code)
        for perm in needed:
            self.auth.require(ident, kind, row["id"], perm, name=body["collection"])
        perms = body["permissions"]
        allowed = perms_for(kind)
        if not isinstance(perms, list) or not all(isinstance(p, str) and p in allowed for p in perms):
            raise BossError(INVALID_POST_ARGUMENT, f"permissions {perms!r} are not valid on a {kind}: "
                                                   f"use some of {', '.join(allowed)}")
        if group["name"] == PUBLIC_GROUP and not set(perms) <= PUBLIC_READS:
            raise BossError(INVALID_POST_ARGUMENT, "group public may only be granted read and read_volumetric_data")
        return group, kind, row, perms

    def add_permissions(self, ident: Identity, body: Any) -> None:
        with self.db.begin() as conn:
            group, kind, row, perms = self._prepare(conn, ident, body, INVALID_URL, ("assign_group",))
            if perms:  # a grant that already exists (another request's, a moment ago) is kept as it is
                conn.execute(_insert_new(conn, permissions), [{"group_id": group["id"], "kind": kind,
                                                               "obj_id": row["id"], "perm": p}
                                                              for p in dict.fromkeys(perms)])
        self.auth.forget()

    def replace_permissions(self, ident: Identity, body: Any) -> None:
        with self.db.begin() as conn:
            group, kind, row, perms = self._prepare(conn, ident, body, UNABLE_TO_VALIDATE,
                                                    ("assign_group", "remove_group"))
            self._clear(conn, group["id"], kind, row["id"])
            if perms:
                conn.execute(insert(permissions), [{"group_id": group["id"], "kind": kind, "obj_id": row["id"],
                                                    "perm": p} for p in dict.fromkeys(perms)])
        self.auth.forget()

    def delete_permissions(self, ident: Identity, params: dict[str, str]) -> None:
        self.auth.require_role(ident, *MANAGER)
        with self.db.begin() as conn:
            if not params.get("group"):
                raise BossError(INVALID_URL, "the query string needs group=... and collection=...")
            group = self._group(conn, params["group"], lock=True)
            kind, row = self._target(conn, params, INVALID_URL)
            self.auth.require(ident, kind, row["id"], "remove_group", name=params["collection"])
            self._clear(conn, group["id"], kind, row["id"])
        self.auth.forget()

    @staticmethod
    def _clear(conn, gid: int, kind: str, obj_id: int) -> None:
        conn.execute(delete(permissions).where(permissions.c.group_id == gid, permissions.c.kind == kind,
                                               permissions.c.obj_id == obj_id))


def _insert_new(conn, table: Table):
    """INSERT that skips rows whose key exists: concurrent grants from several threads or processes
    cannot both see "not yet granted" and then collide on the primary key."""
    dialect = {"postgresql": postgresql, "sqlite": sqlite}.get(conn.dialect.name)
    return insert(table) if dialect is None else dialect.insert(table).on_conflict_do_nothing()

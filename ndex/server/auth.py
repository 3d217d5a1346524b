"""Who is calling (token -> Identity) and what they may do (roles, object permissions granted to groups).

Role `admin` passes every check. Everyone else needs a permission held by one of their groups, or,
for reads with a public shortcut, an object flagged `public`. The token `public` (unless it is a real
token) acts as a read-only account in group `public`, like BOSS's public-access account (every BOSS
user is in that group). A request without credentials belongs to no group at all, as BOSS's anonymous
user (django-guardian's anonymous support is off there): it reads objects flagged `public` and nothing
that was granted to a group, and lists no permission sets.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from ndex.server.db import Database
from ndex.server.http_errors import MISSING_PERMISSION, MISSING_ROLE, BossError, NotAuthenticated
from ndex.server.schema import permissions
from ndex.server.ttlcache import TTLCache
from ndex.server.users import PUBLIC_GROUP, group_id, groups_of, roles_of, user_by_token

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
BASE_PERMS = ("read", "add", "update", "delete", "assign_group", "remove_group")
DATA_PERMS = ("add_volumetric_data", "read_volumetric_data", "delete_volumetric_data")
PUBLIC_READS = frozenset({"read", "read_volumetric_data"})


def perms_for(kind: str) -> tuple[str, ...]:
    """Every permission that exists on an object of `kind` (channels also carry the data ones)."""
    return BASE_PERMS + DATA_PERMS if kind == "channel" else BASE_PERMS


@dataclass(frozen=True)
class Identity:
    user_id: int | None
    username: str
    roles: frozenset[str]
    groups: frozenset[int]

    @property
    def admin(self) -> bool:
        return "admin" in self.roles

    def has_role(self, *roles: str) -> bool:
        return self.admin or any(r in self.roles for r in roles)


class Authorizer:
    def __init__(self, db: Database, cache_seconds: float) -> None:
        self.db = db
        self.identities: TTLCache[Identity | None] = TTLCache(cache_seconds)
        self.grants: TTLCache[frozenset[str]] = TTLCache(cache_seconds)
        self._public_gid: int | None = None

    # --- who -----------------------------------------------------------------------------------

    def identify(self, method: str, authorization: str | None) -> Identity:
        """The caller of a request; NotAuthenticated (401) for bad tokens or anonymous unsafe verbs."""
        if not authorization:
            if method.upper() not in SAFE_METHODS:
                raise NotAuthenticated("Authentication credentials were not provided.")
            return self.anonymous()
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() not in ("token", "bearer") or not token:  # Bearer: neuroglancer and OAuth clients
            raise NotAuthenticated("Invalid token header: use 'Authorization: Token <token>' (or Bearer <token>).")
        ident = self.identities.get(("token", token), lambda: self._load(token))
        if ident is None:
            raise NotAuthenticated("Invalid token.")
        return ident

    def _load(self, token: str) -> Identity | None:
        with self.db.begin() as conn:
            found = user_by_token(conn, token)
            if found is None:
                return self.public_account() if token == "public" else None
            uid, name = found
            return Identity(uid, name, frozenset(roles_of(conn, uid)), groups_of(conn, uid))

    @staticmethod
    def anonymous() -> Identity:
        """A caller without credentials: no user, no role, no group."""
        return Identity(None, "anonymous", frozenset(), frozenset())

    def public_account(self) -> Identity:
        """The `public` token: read-only, in group `public` (what is shared with every user reaches it)."""
        if self._public_gid is None:
            with self.db.begin() as conn:
                self._public_gid = group_id(conn, PUBLIC_GROUP)
        return Identity(None, "public", frozenset(), frozenset({self._public_gid}))  # type: ignore[arg-type]  # built in

    # --- what ----------------------------------------------------------------------------------

    def granted(self, ident: Identity, kind: str, obj_id: int) -> frozenset[str]:
        """Permissions the caller's groups hold on one object."""
        if not ident.groups:
            return frozenset()
        return self.grants.get((ident.groups, kind, obj_id), lambda: self._load_grants(ident.groups, kind, obj_id))

    def _load_grants(self, gids: frozenset[int], kind: str, obj_id: int) -> frozenset[str]:
        with self.db.begin() as conn:
            rows = conn.execute(select(permissions.c.perm).where(
                permissions.c.kind == kind, permissions.c.obj_id == obj_id, permissions.c.group_id.in_(gids)))
            return frozenset(r[0] for r in rows)

    def allowed(self, ident: Identity, kind: str, obj_id: int, perm: str, *, public: bool = False) -> bool:
        if ident.admin or (public and perm in PUBLIC_READS):
            return True
        return perm in self.granted(ident, kind, obj_id)

    def require(self, ident: Identity, kind: str, obj_id: int, perm: str, *, public: bool = False,
                name: str = "") -> None:
        if not self.allowed(ident, kind, obj_id, perm, public=public):
            raise BossError(MISSING_PERMISSION, f"{ident.username} lacks the {perm!r} permission on {kind} "
                                                f"{name or obj_id}: ask its owner to grant it to one of your groups")

    def require_role(self, ident: Identity, *roles: str) -> None:
        if not ident.has_role(*roles):
            raise BossError(MISSING_ROLE, f"{ident.username} needs the role {' or '.join(roles)} (or admin) "
                                          "for this request: an admin can grant it")

    def forget(self) -> None:
        """Drop cached grants and identities after a permission, group or role change."""
        self.grants.clear()
        self.identities.clear()

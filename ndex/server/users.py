"""Users, roles, API tokens (stored only as sha256 hashes) and group membership.

Every user has a personal group, `<user>-primary` (BOSS's name), that holds the permissions on what
the user creates. It is created with the user, bound to the user's id (`groups.personal_of`), and
deleted with the user; names of that form are reserved, so nobody can create one in advance, join
one, or manage one. Deleting a user deletes everything bound to it, so a new user of the same name
starts with nothing.
"""
from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select, update

from ndex.errors import UsageError
from ndex.server.http_errors import USER_NOT_FOUND, BossError
from ndex.server.schema import (
    group_maintainers,
    group_members,
    groups,
    permissions,
    tokens,
    user_roles,
    users,
)

ROLES = ("admin", "user-manager", "resource-manager")
CLI_ROLES = ("admin", "resource-manager", "user")  # "user" = no special role
ADMIN_GROUP, PUBLIC_GROUP = "admin", "public"
PERSONAL_SUFFIX = "-primary"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return secrets.token_hex(20)  # 40 hex characters, like DRF authtoken keys


def primary_group(username: str) -> str:
    return f"{username}{PERSONAL_SUFFIX}"


def reserved_name(name: str) -> bool:
    """Is this a personal group's name form? (Case-blind: no look-alike of someone's group either.)"""
    return name.lower().endswith(PERSONAL_SUFFIX)


def personal_group_id(conn: Connection, uid: int | None) -> int | None:
    """The id of the user's own group, found by the user's id (never by name)."""
    if uid is None:
        return None
    return conn.execute(select(groups.c.id).where(groups.c.personal_of == uid)).scalar()


@dataclass(frozen=True)
class TokenInfo:
    id: int
    username: str
    roles: tuple[str, ...]
    created: float


def user_id(conn: Connection, username: str) -> int | None:
    return conn.execute(select(users.c.id).where(users.c.username == username)).scalar()


def user_row(conn: Connection, username: str):
    """The user's record; 404 (USER_NOT_FOUND) when there is none, for the routes that name a user."""
    row = conn.execute(select(users).where(users.c.username == username)).first()
    if row is None:
        raise BossError(USER_NOT_FOUND, f"user {username!r} does not exist")
    return row


def known_user_id(conn: Connection, username: str) -> int:
    return user_row(conn, username).id


def group_id(conn: Connection, name: str) -> int | None:
    return conn.execute(select(groups.c.id).where(groups.c.name == name)).scalar()


def ensure_group(conn: Connection, name: str, owner: str = "") -> int:
    gid = group_id(conn, name)
    if gid is None:
        gid = conn.execute(insert(groups).values(name=name, owner=owner)).inserted_primary_key[0]  # type: ignore[index]
    return gid


def ensure_builtin_groups(conn: Connection) -> None:
    ensure_group(conn, ADMIN_GROUP)
    ensure_group(conn, PUBLIC_GROUP)


def create_user(conn: Connection, username: str, *, roles: tuple[str, ...] = (), first_name: str = "",
                last_name: str = "", email: str = "") -> int:
    """A user with a personal group (member and maintainer) and membership of `public`."""
    ensure_builtin_groups(conn)
    name = primary_group(username)
    if group_id(conn, name) is not None:
        raise UsageError(f"a group named {name!r} already exists but is not {username}'s own (it predates the "
                         f"reservation of such names): an admin must delete it (DELETE /v1/groups/{name}) "
                         f"before user {username!r} can be created")
    uid = conn.execute(insert(users).values(username=username, first_name=first_name, last_name=last_name,
                                            email=email, created=time.time())).inserted_primary_key[0]  # type: ignore[index]
    gid = conn.execute(insert(groups).values(name=name, owner=username, personal_of=uid)).inserted_primary_key[0]  # type: ignore[index]
    conn.execute(insert(group_members).values(group_id=gid, user_id=uid))
    conn.execute(insert(group_maintainers).values(group_id=gid, user_id=uid))
    conn.execute(insert(group_members).values(group_id=group_id(conn, PUBLIC_GROUP), user_id=uid))
    for role in roles:
        add_role(conn, uid, role)
    return uid


def add_role(conn: Connection, uid: int, role: str) -> None:
    if role not in roles_of(conn, uid):
        conn.execute(insert(user_roles).values(user_id=uid, role=role))


def remove_role(conn: Connection, uid: int, role: str) -> None:
    conn.execute(delete(user_roles).where(user_roles.c.user_id == uid, user_roles.c.role == role))


def set_cli_role(conn: Connection, uid: int, role: str) -> None:
    """Make `role` the user's one CLI role ("user": none of them); roles from elsewhere stay."""
    for old in CLI_ROLES:
        if old != role:
            remove_role(conn, uid, old)
    if role != "user":
        add_role(conn, uid, role)


def roles_of(conn: Connection, uid: int) -> tuple[str, ...]:
    rows = conn.execute(select(user_roles.c.role).where(user_roles.c.user_id == uid).order_by(user_roles.c.role))
    return tuple(r[0] for r in rows)


def delete_user(conn: Connection, uid: int) -> None:
    """The user, its tokens, roles, memberships and personal group (with every permission granted to
    it); groups it created lose their owner, so that only an admin may delete them from now on."""
    gid = personal_group_id(conn, uid)
    if gid is not None:
        for table in (group_members, group_maintainers, permissions):
            conn.execute(delete(table).where(table.c.group_id == gid))
        conn.execute(delete(groups).where(groups.c.id == gid))
    for table in (tokens, user_roles, group_members, group_maintainers):
        conn.execute(delete(table).where(table.c.user_id == uid))
    username = conn.execute(select(users.c.username).where(users.c.id == uid)).scalar()
    conn.execute(update(groups).where(groups.c.owner == username).values(owner=""))
    conn.execute(delete(users).where(users.c.id == uid))


def issue_token(conn: Connection, username: str, role: str | None = None) -> str:
    """A new token for `username`, creating the user (with `role`) if needed; the plain token is returned once."""
    if role is not None and role not in CLI_ROLES:
        raise UsageError(f"unknown role {role!r}: use one of {', '.join(CLI_ROLES)}")
    uid = user_id(conn, username)
    if uid is None:
        uid = create_user(conn, username, roles=(role,) if role is not None and role != "user" else ())
    elif role is not None:
        set_cli_role(conn, uid, role)
    token = new_token()
    conn.execute(insert(tokens).values(user_id=uid, token_hash=hash_token(token), created=time.time()))
    return token


def list_tokens(conn: Connection) -> list[TokenInfo]:
    rows = conn.execute(select(tokens.c.id, tokens.c.created, users.c.id.label("uid"), users.c.username)
                        .join(users, users.c.id == tokens.c.user_id).order_by(tokens.c.id))
    return [TokenInfo(r.id, r.username, roles_of(conn, r.uid), r.created) for r in rows]


def list_users(conn: Connection) -> list[tuple[str, tuple[str, ...]]]:
    rows = conn.execute(select(users.c.id, users.c.username).order_by(users.c.username))
    return [(r.username, roles_of(conn, r.id)) for r in rows]


def revoke_tokens(conn: Connection, *, token_id: int | None = None, username: str | None = None) -> int:
    """Delete one token by id, or every token of a user; returns how many were revoked."""
    if token_id is not None:
        return conn.execute(delete(tokens).where(tokens.c.id == token_id)).rowcount
    uid = user_id(conn, username or "")
    if uid is None:
        raise UsageError(f"no user {username!r}: `ndex token list` shows the users")
    return conn.execute(delete(tokens).where(tokens.c.user_id == uid)).rowcount


def ensure_first_admin(conn: Connection) -> bool:
    """On an empty database create user `admin` (role admin, no token yet); True if it was created."""
    ensure_builtin_groups(conn)
    if conn.execute(select(users.c.id).limit(1)).first() is not None:
        return False
    create_user(conn, "admin", roles=("admin",))
    return True


def user_by_token(conn: Connection, token: str):
    """(user id, username) of a token, or None."""
    row = conn.execute(select(users.c.id, users.c.username).join(tokens, tokens.c.user_id == users.c.id)
                       .where(tokens.c.token_hash == hash_token(token))).first()
    return None if row is None else (row.id, row.username)


def groups_of(conn: Connection, uid: int) -> frozenset[int]:
    rows = conn.execute(select(group_members.c.group_id).where(group_members.c.user_id == uid))
    return frozenset(r[0] for r in rows)

"""Ownership and identity: personal groups bound to their user, re-created names that inherit nothing,
and group rosters shown only to the group's insiders (members, maintainers) and admins.

Everything goes through the HTTP routes and `ndex token`, as an outsider would."""
from __future__ import annotations

import uuid

import pytest
import requests
from fixtures_server import ServerHandle, cli_token, ndex_cli
from sqlalchemy import insert

from ndex.server.db import Database
from ndex.server.schema import group_members, groups
from ndex.server.users import create_user, user_id


def name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def call(server: ServerHandle, method: str, path: str, who: ServerHandle | None, **kw) -> requests.Response:
    headers = who.headers if who is not None else {}
    return requests.request(method, f"{server.url}/v1/{path}", headers=headers, timeout=30, **kw)


def answer(r: requests.Response) -> tuple[int, int | None]:
    body = r.json() if r.content else {}
    return r.status_code, body.get("code") if isinstance(body, dict) else None


@pytest.fixture(scope="module")
def srv(each_db_server):
    return each_db_server


def collection(server, who, coll):
    r = call(server, "POST", f"collection/{coll}", who, json={"description": "x"})
    assert r.status_code == 201, r.text


def visible(server, who, coll) -> bool:
    return call(server, "GET", f"collection/{coll}", who).status_code == 200


# --- personal groups cannot be taken over by name ----------------------------------------------------


def test_nobody_creates_a_group_in_the_personal_name_form(srv):
    mallory = cli_token(srv, name("mal"), "resource-manager")
    victim = name("vic")
    for who in (mallory, srv):  # not even an admin: the group comes with its user
        for group in (f"{victim}-primary", f"{victim}-PRIMARY", "x-primary"):
            assert answer(call(srv, "POST", f"groups/{group}", who)) == (400, 1006)
    assert call(srv, "GET", f"groups/{victim}-primary", srv).status_code == 404


def test_a_new_users_group_is_theirs_alone(srv):
    mal_name, victim = name("mal"), name("vic")
    mallory = cli_token(srv, mal_name, "resource-manager")
    assert call(srv, "POST", f"sso/user/{victim}", srv, json={}).status_code == 201
    vic = cli_token(srv, victim, "resource-manager")
    own = f"{victim}-primary"
    assert set(call(srv, "GET", "groups", vic).json()["groups"]) == {own, "public"}
    coll = name("vc")
    collection(srv, vic, coll)
    assert visible(srv, vic, coll) and not visible(srv, mallory, coll)
    # joining, managing, deleting or reading the roster of someone's own group: refused for everyone
    for path in (f"groups/{own}/members/{mal_name}", f"groups/{own}/maintainers/{mal_name}"):
        assert answer(call(srv, "POST", path, mallory)) == (400, 1006)
        assert answer(call(srv, "POST", path, srv)) == (400, 1006)
        assert answer(call(srv, "POST", path, vic)) == (400, 1006)  # sharing goes through groups of one's own
    assert answer(call(srv, "DELETE", f"groups/{own}/members/{victim}", vic)) == (400, 1006)
    assert answer(call(srv, "DELETE", f"groups/{own}", mallory))[0] in (400, 403)
    assert answer(call(srv, "DELETE", f"groups/{own}", srv)) == (400, 1006)
    assert answer(call(srv, "GET", f"groups/{own}/members", mallory)) == (403, 3001)
    assert answer(call(srv, "POST", "permissions", mallory,
                       json={"group": own, "collection": coll, "permissions": ["read"]})) == (403, 3001)
    assert call(srv, "GET", f"groups/{own}/members", vic).json() == {"members": [victim]}
    assert not visible(srv, mallory, coll)


def test_a_group_squatted_before_names_were_reserved_blocks_the_user_until_an_admin_deletes_it(srv):
    """A database from before the reservation may hold `<name>-primary` made by someone else: creating
    the user then fails with a message naming the group, instead of making the user join it."""
    victim, squatter = name("zed"), name("sq")
    db = Database(srv.database_url)
    try:
        with db.begin() as conn:
            create_user(conn, squatter, roles=("resource-manager",))
            gid = conn.execute(insert(groups).values(name=f"{victim}-primary", owner=squatter)).inserted_primary_key[0]
            conn.execute(insert(group_members).values(group_id=gid, user_id=user_id(conn, squatter)))
    finally:
        db.close()
    r = call(srv, "POST", f"sso/user/{victim}", srv, json={})
    assert r.status_code == 400 and f"{victim}-primary" in r.json()["message"]
    assert call(srv, "GET", f"sso/user/{victim}", srv).status_code == 404
    assert call(srv, "DELETE", f"groups/{victim}-primary", srv).status_code == 204
    assert call(srv, "POST", f"sso/user/{victim}", srv, json={}).status_code == 201
    vic = cli_token(srv, victim)
    assert call(srv, "GET", f"groups/{victim}-primary/members", srv).json() == {"members": [victim]}
    assert set(call(srv, "GET", "groups", vic).json()["groups"]) == {f"{victim}-primary", "public"}


# --- a re-created name inherits nothing ---------------------------------------------------------------


def test_a_recreated_user_name_inherits_nothing(srv):
    olga = name("olga")
    first = cli_token(srv, olga, "resource-manager")
    mine, shared, granted = name("mine"), name("shared"), name("granted")
    collection(srv, first, mine)                                   # through the personal group
    collection(srv, srv, shared)
    collection(srv, srv, granted)
    team = name("team")
    assert call(srv, "POST", f"groups/{team}", first).status_code == 201  # owned by olga
    assert call(srv, "POST", f"groups/{team}/members/admin", first).status_code == 204
    readers = name("readers")
    assert call(srv, "POST", f"groups/{readers}", srv).status_code == 201
    assert call(srv, "POST", f"groups/{readers}/members/{olga}", srv).status_code == 204
    assert call(srv, "POST", "permissions", srv,
                json={"group": readers, "collection": shared, "permissions": ["read"]}).status_code == 201
    assert call(srv, "POST", "permissions", srv,
                json={"group": f"{olga}-primary", "collection": granted, "permissions": ["read"]}).status_code == 201
    assert call(srv, "POST", f"sso/user-role/{olga}/user-manager", srv).status_code == 201
    assert all(visible(srv, first, c) for c in (mine, shared, granted))

    assert call(srv, "DELETE", f"sso/user/{olga}", srv).status_code == 204
    assert call(srv, "GET", "collection", first).status_code == 401  # its tokens are gone
    assert olga not in ndex_cli("token", "list", "--data", str(srv.data_dir), "--db", srv.db_url).stdout

    second = cli_token(srv, olga)  # a plain user of the same name
    assert set(call(srv, "GET", "groups", second).json()["groups"]) == {f"{olga}-primary", "public"}
    assert call(srv, "GET", f"sso/user-role/{olga}", second).json() == []
    assert not any(visible(srv, second, c) for c in (mine, shared, granted))
    assert call(srv, "GET", "permissions", second).json() == {"permission-sets": []}
    names = call(srv, "GET", "collection", second).json()["collections"]
    assert not {mine, shared, granted} & set(names)
    # the group the first olga created keeps its members but has no owner: only an admin deletes it now
    assert call(srv, "GET", f"groups/{team}", srv).json()["owner"] == ""
    assert answer(call(srv, "POST", f"sso/user-role/{olga}/resource-manager", srv)) == (201, None)
    assert answer(call(srv, "DELETE", f"groups/{team}", second)) == (403, 3000)
    assert answer(call(srv, "GET", f"groups/{team}", second)) == (403, 3001)
    assert answer(call(srv, "GET", f"groups/{readers}/members", second)) == (403, 3001)
    assert call(srv, "GET", f"groups/{readers}/members", srv).json() == {"members": ["admin"]}
    assert call(srv, "DELETE", f"groups/{team}", srv).status_code == 204


def test_a_deleted_users_personal_group_goes_with_it(srv):
    ivan = name("ivan")
    cli_token(srv, ivan, "resource-manager")
    assert call(srv, "GET", f"groups/{ivan}-primary", srv).status_code == 200
    assert call(srv, "DELETE", f"sso/user/{ivan}", srv).status_code == 204
    assert answer(call(srv, "GET", f"groups/{ivan}-primary", srv)) == (404, 4001)
    assert answer(call(srv, "POST", f"groups/{ivan}-primary", srv)) == (400, 1006)  # still reserved


# --- who may read a group's roster (BOSS: a resource-manager inside the group, or an admin) -----------


def test_group_rosters_are_for_insiders_and_admins(srv):
    owner = cli_token(srv, name("own"), "resource-manager")
    member_name, maint_name = name("mem"), name("mnt")
    member, maint = cli_token(srv, member_name, "resource-manager"), cli_token(srv, maint_name, "resource-manager")
    outsider, plain = cli_token(srv, name("out"), "resource-manager"), cli_token(srv, name("pln"))
    um_name = name("um")
    um = cli_token(srv, um_name)
    assert call(srv, "POST", f"sso/user-role/{um_name}/user-manager", srv).status_code == 201
    team = name("team")
    assert call(srv, "POST", f"groups/{team}", owner).status_code == 201
    assert call(srv, "POST", f"groups/{team}/members/{member_name}", owner).status_code == 204
    assert call(srv, "POST", f"groups/{team}/maintainers/{maint_name}", owner).status_code == 204
    for roster in ("members", "maintainers"):
        for path in (f"groups/{team}/{roster}", f"groups/{team}/{roster}/{member_name}"):
            for who in (owner, member, maint, srv):
                assert call(srv, "GET", path, who).status_code == 200, (path, who)
            assert answer(call(srv, "GET", path, outsider)) == (403, 3001)
            for who in (plain, um):
                assert answer(call(srv, "GET", path, who)) == (403, 3000)
            assert answer(call(srv, "GET", path, None)) == (403, 3000)
            assert answer(call(srv, "GET", path, srv.as_user("public"))) == (403, 3000)


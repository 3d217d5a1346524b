"""An outsider's sweep of the identity routes: every role (user-manager, resource-manager, plain user,
the `public` token, no token, a deleted user's token) tries every group, roster, permission and user
route against another user's own group, a group it is not in, and reserved names of users that do not
exist yet. None may get a 5xx, and afterwards the victim's group, data and grants are exactly as before."""
from __future__ import annotations

import itertools
import uuid

import pytest
import requests
from fixtures_server import ServerHandle, cli_token

ROLES = ("user-manager", "resource-manager", "user")


def tag(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def send(server: ServerHandle, headers: dict, method: str, path: str, **kw) -> requests.Response:
    return requests.request(method, f"{server.url}/v1/{path}", headers=headers, timeout=30, **kw)


def probes(victim: str, team: str, coll: str, attacker: str, future: str) -> list[tuple[str, str, dict]]:
    own = f"{victim}-primary"
    groups = (own, own.upper(), team, f"{future}-primary", f"{attacker}-primary")
    out: list[tuple[str, str, dict]] = []
    for g in groups:
        out += [("POST", f"groups/{g}", {}), ("DELETE", f"groups/{g}", {}), ("GET", f"groups/{g}", {})]
        for roster, who in itertools.product(("members", "maintainers"), (attacker, victim, future)):
            out += [("GET", f"groups/{g}/{roster}", {}), ("GET", f"groups/{g}/{roster}/{who}", {}),
                    ("POST", f"groups/{g}/{roster}/{who}", {}), ("DELETE", f"groups/{g}/{roster}/{who}", {})]
        for perms in (["read"], ["read", "update", "delete", "assign_group"]):
            body = {"group": g, "collection": coll, "permissions": perms}
            out += [("POST", "permissions", {"json": body}), ("PATCH", "permissions", {"json": body})]
        out += [("DELETE", "permissions", {"params": {"group": g, "collection": coll}}),
                ("GET", "permissions", {"params": {"group": g}})]
    for user in (victim, future):
        out += [("POST", f"sso/user/{user}", {"json": {}}), ("DELETE", f"sso/user/{user}", {}),
                ("GET", f"sso/user/{user}", {}), ("GET", f"sso/user-role/{user}", {})]
        for role in ("admin", "user-manager", "resource-manager"):
            # revoke first: a user-manager may change roles, and this order leaves the victim's as they were
            out += [("DELETE", f"sso/user-role/{user}/{role}", {}), ("POST", f"sso/user-role/{user}/{role}", {})]
    out += [("GET", f"collection/{coll}", {}), ("PUT", f"collection/{coll}", {"json": {"description": "mine"}}),
            ("DELETE", f"collection/{coll}", {})]
    return out


def snapshot(server: ServerHandle, victim: str, team: str, coll: str, victim_token: ServerHandle) -> dict:
    admin = server.headers
    own = f"{victim}-primary"
    return {
        "members": send(server, admin, "GET", f"groups/{own}/members").json(),
        "maintainers": send(server, admin, "GET", f"groups/{own}/maintainers").json(),
        "team": send(server, admin, "GET", f"groups/{team}/members").json(),
        "sets": send(server, admin, "GET", "permissions", params={"collection": coll}).json(),
        "collection": send(server, admin, "GET", f"collection/{coll}").json(),
        "victim-sees": send(server, victim_token.headers, "GET", f"collection/{coll}").status_code,
        "victim-groups": sorted(send(server, victim_token.headers, "GET", "groups").json()["groups"]),
        "victim-roles": send(server, admin, "GET", f"sso/user-role/{victim}").json(),
    }


@pytest.mark.parametrize("role", [*ROLES, "public", "anonymous", "deleted-user"])
def test_no_role_reaches_another_users_group_data_or_grants(server_app, role):
    srv = server_app
    victim, attacker, future = tag("vic"), tag("atk"), tag("fut")
    vic = cli_token(srv, victim, "resource-manager")
    coll, team = tag("vcoll"), tag("vteam")
    assert send(srv, vic.headers, "POST", f"collection/{coll}", json={}).status_code == 201
    assert send(srv, vic.headers, "POST", f"groups/{team}").status_code == 201
    before = snapshot(srv, victim, team, coll, vic)
    if role in ROLES:
        headers = cli_token(srv, attacker, role if role == "resource-manager" else None).headers
        if role == "user-manager":
            assert send(srv, srv.headers, "POST", f"sso/user-role/{attacker}/user-manager").status_code == 201
    elif role == "public":
        headers = {"Authorization": "Token public"}
    elif role == "anonymous":
        headers = {}
    else:
        headers = cli_token(srv, attacker, "resource-manager").headers
        assert send(srv, srv.headers, "DELETE", f"sso/user/{attacker}").status_code == 204
    statuses, leaks = [], []
    for method, path, kw in probes(victim, team, coll, attacker, future):
        r = send(srv, headers, method, path, **kw)
        statuses.append(r.status_code)
        if r.ok and any(path.startswith(f"groups/{g}/") for g in (f"{victim}-primary", team)):
            leaks.append((method, path))  # a roster read or change of a group the caller is not in
        assert r.status_code < 500, (method, path, r.status_code, r.text)
        assert "Traceback" not in r.text
    assert not leaks
    assert snapshot(srv, victim, team, coll, vic) == before
    future_exists = send(srv, srv.headers, "GET", f"sso/user/{future}").status_code == 200
    assert future_exists == (role == "user-manager")  # the only one who may create users
    if future_exists:  # with a group of its own that nobody else joined
        assert send(srv, srv.headers, "GET", f"groups/{future}-primary/members").json() == {"members": [future]}
    assert len(statuses) > 150

def test_admins_cannot_break_the_reservation_either(server_app):
    srv = server_app
    victim, future = tag("vic"), tag("fut")
    cli_token(srv, victim)
    own = f"{victim}-primary"
    for method, path in (("POST", f"groups/{future}-primary"), ("POST", f"groups/{own.upper()}"),
                         ("POST", f"groups/{own}/members/admin"), ("POST", f"groups/{own}/maintainers/admin"),
                         ("DELETE", f"groups/{own}/members/{victim}"), ("DELETE", f"groups/{own}/maintainers/{victim}"),
                         ("DELETE", f"groups/{own}")):
        r = send(srv, srv.headers, method, path)
        assert (r.status_code, r.json()["code"]) == (400, 1006), (method, path, r.text)
    assert send(srv, srv.headers, "GET", f"groups/{own}/members").json() == {"members": [victim]}
    assert send(srv, srv.headers, "GET", f"groups/{own}/maintainers").json() == {"maintainers": [victim]}

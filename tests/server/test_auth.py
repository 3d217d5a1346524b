"""Roles, object permissions, groups, the `public` token and anonymous reads."""
from __future__ import annotations

import blosc
import numpy as np
import pytest
import requests
from fixtures_server import ServerHandle, make_channel
from intern.remote.boss import BossRemote
from intern.resource.boss.resource import ChannelResource, CollectionResource
from requests import HTTPError

from ndex.server.db import Database
from ndex.server.users import issue_token


def user(server: ServerHandle, name: str, role: str | None = None) -> ServerHandle:
    db = Database(f"sqlite:///{server.data_dir / 'ndex.sqlite'}")
    try:
        with db.begin() as conn:
            token = issue_token(conn, name, role)
    finally:
        db.close()
    return ServerHandle(server.url, token, server.data_dir)


@pytest.fixture(scope="module")
def bob(server_app):
    return user(server_app, "bob", "resource-manager")


@pytest.fixture(scope="module")
def private(server_app):
    """Admin's private channel with data."""
    tc = make_channel(server_app, extent=(64, 64, 16))
    r = requests.post(f"{server_app.url}/v1/cutout/{tc.path}/0/0:4/0:4/0:1/", headers=server_app.headers,
                      data=blosc.compress(np.full(16, 5, np.uint8).tobytes(), typesize=8), timeout=30)
    assert r.status_code == 201
    return tc


def code_of(r):
    return r.status_code, r.json().get("code")


def test_other_users_private_collection_is_out_of_reach(server_app, bob, private):
    h, base = bob.headers, server_app.url
    assert private.collection not in requests.get(f"{base}/v1/collection/", headers=h, timeout=30).json()["collections"]
    assert code_of(requests.get(f"{base}/v1/collection/{private.collection}", headers=h, timeout=30)) == (403, 3001)
    assert code_of(requests.put(f"{base}/v1/collection/{private.collection}", json={"description": "mine"},
                                headers=h, timeout=30)) == (403, 3001)
    assert code_of(requests.delete(f"{base}/v1/collection/{private.collection}", headers=h, timeout=30)) == (403, 3001)
    r = requests.get(f"{base}/v1/cutout/{private.path}/0/0:4/0:4/0:1/", headers=h, timeout=30)
    assert code_of(r) == (403, 3001)
    r = requests.post(f"{base}/v1/cutout/{private.path}/0/0:4/0:4/0:1/", headers=h, timeout=30,
                      data=blosc.compress(np.full(16, 9, np.uint8).tobytes(), typesize=8))
    assert code_of(r) == (403, 3001)
    assert code_of(requests.get(f"{base}/v1/meta/{private.collection}", headers=h, timeout=30)) == (403, 3001)
    r = requests.get(f"{base}/v1/cutout/{private.path}/0/0:4/0:4/0:1/", headers=server_app.headers, timeout=30)
    assert (np.frombuffer(blosc.decompress(r.content), np.uint8) == 5).all()  # untouched


def test_granting_read_to_a_group_opens_the_collection(server_app, bob, private):
    admin = BossRemote(server_app.intern_config())
    coll = CollectionResource(private.collection)
    admin.create_group("readers")
    admin.add_group_member("readers", "bob")
    assert admin.get_is_group_member("readers", "bob")
    admin.add_permissions("readers", coll, ["read"])
    assert admin.get_permissions("readers", coll) == ["read"]
    assert requests.get(f"{server_app.url}/v1/collection/{private.collection}", headers=bob.headers,
                        timeout=30).status_code == 200
    chan = ChannelResource(private.channel, private.collection, private.experiment)
    admin.add_permissions("readers", chan, ["read", "read_volumetric_data"])
    r = requests.get(f"{server_app.url}/v1/cutout/{private.path}/0/0:4/0:4/0:1/", headers=bob.headers, timeout=30)
    assert r.status_code == 200
    admin.update_permissions("readers", chan, ["read"])
    assert admin.get_permissions("readers", chan) == ["read"]
    admin.delete_permissions("readers", coll)
    assert requests.get(f"{server_app.url}/v1/collection/{private.collection}", headers=bob.headers,
                        timeout=30).status_code == 403
    group = admin.get_group("readers")
    assert group["owner"] == "admin" and group["resources"] == [
        {"collection": private.collection, "experiment": private.experiment, "channel": private.channel}]
    admin.delete_group("readers")
    assert "readers" not in admin.list_groups()


def test_group_rules(server_app, bob):
    admin, b = BossRemote(server_app.intern_config()), BossRemote(bob.intern_config())
    b.create_group("bobs")
    assert "bobs" in b.list_groups(filtr="maintainer") and b.get_is_group_maintainer("bobs", "bob")
    with pytest.raises(HTTPError) as err:
        admin.create_group("bobs")
    assert code_of(err.value.response) == (404, 6001)
    for call in (lambda: admin.delete_group("admin"), lambda: admin.add_group_member("public", "bob")):
        with pytest.raises(HTTPError) as err:
            call()
        assert code_of(err.value.response) == (400, 1006)
    with pytest.raises(HTTPError) as err:
        b.add_group_member("bobs", "nobody")
    assert code_of(err.value.response) == (404, 4002)
    b.add_group_maintainer("bobs", "admin")
    assert set(b.list_group_maintainers("bobs")) == {"admin", "bob"}
    b.delete_group_maintainer("bobs", "admin")
    b.delete_group("bobs")


def test_invalid_permission_names_are_refused(server_app, private):
    admin = BossRemote(server_app.intern_config())
    admin.create_group("perm-check")
    try:
        with pytest.raises(HTTPError) as err:
            admin.add_permissions("perm-check", CollectionResource(private.collection), ["read", "add_volumetric_data"])
        assert code_of(err.value.response) == (400, 1003)
        with pytest.raises(HTTPError) as err:
            admin.add_permissions("public", CollectionResource(private.collection), ["update"])
        assert code_of(err.value.response) == (400, 1003)
    finally:
        admin.delete_group("perm-check")


def test_plain_user_cannot_create_resources(server_app):
    carol = user(server_app, "carol", "user")
    r = requests.post(f"{server_app.url}/v1/collection/carols", json={}, headers=carol.headers, timeout=30)
    assert code_of(r) == (403, 3000)


def test_public_token_and_anonymous_read_public_resources_only(server_app, private):
    pub = make_channel(server_app, extent=(64, 64, 16), public=True)
    for headers in ({"Authorization": "Token public"}, {}):
        r = requests.get(f"{server_app.url}/v1/collection/{pub.collection}", headers=headers, timeout=30)
        assert r.status_code == 200
        r = requests.get(f"{server_app.url}/v1/cutout/{pub.path}/0/0:4/0:4/0:1/", headers=headers, timeout=30)
        assert r.status_code == 200
        names = requests.get(f"{server_app.url}/v1/collection/", headers=headers, timeout=30).json()["collections"]
        assert pub.collection in names and private.collection not in names
        r = requests.get(f"{server_app.url}/v1/collection/{private.collection}", headers=headers, timeout=30)
        assert code_of(r) == (403, 3001)
    r = requests.post(f"{server_app.url}/v1/collection/by-public", json={}, headers={"Authorization": "Token public"},
                      timeout=30)
    assert code_of(r) == (403, 3000)
    r = requests.put(f"{server_app.url}/v1/collection/{pub.collection}", json={"description": "x"},
                     headers={"Authorization": "Token public"}, timeout=30)
    assert code_of(r) == (403, 3001)


def test_users_and_roles(server_app):
    admin = BossRemote(server_app.intern_config())
    admin.add_user("dave", "Dave", "Jones", "dave@example.org", "unused")
    got = admin.get_user("dave")
    assert (got["username"], got["firstName"], got["email"]) == ("dave", "Dave", "dave@example.org")
    admin.add_user_role("dave", "resource-manager")
    assert admin.get_user_roles("dave") == ["resource-manager"]
    with pytest.raises(HTTPError) as err:
        admin.add_user_role("dave", "admin")
    assert code_of(err.value.response) == (403, 7002)
    admin.delete_user_role("dave", "resource-manager")
    admin.delete_user("dave")
    with pytest.raises(HTTPError):
        admin.get_user("dave")

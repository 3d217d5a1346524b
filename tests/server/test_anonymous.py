"""A caller without credentials, route by route, against BOSS's own rules.

BOSS (django/boss/settings/base.py since 2021: IsAuthenticatedOrReadOnly) lets an anonymous GET run;
its anonymous user belongs to no group and django-guardian's anonymous support is off, so it reads
only objects flagged `public` (cutout, image, tile, boundingbox, downsample and the resources), and
its permission listing (views_permission.py walks `request.user.groups`) is empty. Where BOSS itself
fails for anonymous callers (roles looked up for no user: 500) ndex answers its 403 envelope instead.
The routes are read from the app, so a new route is swept the day it is added.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
import requests
from fixtures_server import cli_token, make_channel
from test_error_shape import ALL

from ndex import codecs

PUBLIC_SHORTCUT = ("/v1/cutout/", "/v1/image/", "/v1/tile/", "/v1/boundingbox/", "/v1/downsample/")
OPEN_TO_ALL = ("/v1/coord/{cf}",)  # BOSS's coordinate frame GET checks nothing
LISTS = ("/v1/collection", "/v1/coord", "/v1/groups", "/v1/permissions", "/v1/collection/{c}/experiment",
         "/v1/collection/{c}/experiment/{e}/channel")
GETS = [path for method, path in ALL if method == "GET"]


@pytest.fixture(scope="module")
def channels(server_app):
    """(private, public) annotation channels holding object 1, and (private, public) image channels."""
    private = make_channel(server_app, kind="annotation", datatype="uint64", extent=(512, 512, 16))
    public = make_channel(server_app, kind="annotation", datatype="uint64", extent=(512, 512, 16), public=True)
    images = [make_channel(server_app, extent=(512, 512, 16), public=public) for public in (False, True)]
    block = np.zeros((1, 4, 4), np.uint64)
    block[0, 1, 1] = 1  # object 1, for the bounding box
    for ch in (private, public):
        r = requests.post(f"{server_app.url}/v1/cutout/{ch.path}/0/0:4/0:4/0:1/", data=codecs.encode(block),
                          headers={**server_app.headers, "Content-Type": "application/blosc"}, timeout=30)
        assert r.status_code == 201, r.text
    return (private, public), tuple(images)


def url_of(server, path: str, ch) -> str:
    image = path.startswith(("/v1/image/", "/v1/tile/"))  # one index across the orientation
    values = {"c": ch.collection, "e": ch.experiment, "ch": ch.channel, "cf": ch.frame, "res": "0", "x": "0:4",
              "y": "0:4", "z": "0" if image else "0:1", "t": "0", "num": "1", "obj_id": "1", "orient": "xy",
              "size": "512", "xi": "0", "yi": "0", "zi": "0", "role": "resource-manager", "g": "public",
              "u": "admin"}
    if not image:
        values["t"] = "0:1"
    return server.url + re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path) + "/"


def expected(path: str, public: bool) -> int:
    if path in LISTS or path in OPEN_TO_ALL:
        return 200
    if public and (path.startswith(PUBLIC_SHORTCUT) or path.startswith("/v1/collection/")):
        return 200
    return 403


@pytest.mark.parametrize("path", GETS)
def test_every_get_route_answers_an_anonymous_caller_as_boss_does(server_app, channels, path):
    annotations, images = channels
    for channel, public in zip(images if path.startswith(("/v1/image/", "/v1/tile/")) else annotations,
                               (False, True)):
        r = requests.get(url_of(server_app, path, channel), timeout=30)
        assert r.status_code == expected(path, public), (path, public, r.text[:300])
        if r.status_code == 403:
            body = r.json()
            assert set(body) == {"status", "code", "message"} and body["code"] in (3000, 3001), body
        if path in LISTS:
            assert all(ch.collection not in r.text for ch in (annotations[0], images[0]))


def test_grants_to_group_public_reach_users_and_the_public_token_never_anonymous(server_app, channels):
    private = channels[0][0]
    grant = {"group": "public", "collection": private.collection, "permissions": ["read"]}
    assert requests.post(f"{server_app.url}/v1/permissions/", json=grant, headers=server_app.headers,
                         timeout=30).status_code == 201
    try:
        anonymous_sees_nothing_of_group_public(server_app, private)
    finally:  # the server is shared: every user is in group public
        requests.delete(f"{server_app.url}/v1/permissions/", params={"group": "public", "collection":
                        private.collection}, headers=server_app.headers, timeout=30).raise_for_status()


def anonymous_sees_nothing_of_group_public(server_app, private) -> None:
    carol = cli_token(server_app, "carol-anon")
    where = f"{server_app.url}/v1/collection/{private.collection}/"
    assert requests.get(where, headers=carol.headers, timeout=30).status_code == 200  # every user is in `public`
    assert requests.get(where, headers={"Authorization": "Token public"}, timeout=30).status_code == 200
    r = requests.get(where, timeout=30)
    assert (r.status_code, r.json()["code"]) == (403, 3001)
    names = requests.get(f"{server_app.url}/v1/collection/", timeout=30).json()["collections"]
    assert private.collection not in names
    listed = requests.get(f"{server_app.url}/v1/permissions/", params={"collection": private.collection},
                          headers={"Authorization": "Token public"}, timeout=30).json()["permission-sets"]
    assert listed == [{"group": "public", "collection": private.collection, "permissions": ["read"]}]
    for params in ({}, {"collection": private.collection}):
        r = requests.get(f"{server_app.url}/v1/permissions/", params=params, timeout=30)
        assert r.status_code == 200 and r.json() == {"permission-sets": []}
    r = requests.get(f"{server_app.url}/v1/permissions/", params={"group": "public"}, timeout=30)
    assert (r.status_code, r.json()["code"]) == (403, 3001)  # BOSS shows any group's sets to anyone: ndex does not

"""The `/v1/sso/` user routes' answers: a duplicate user, a revoked role, an unknown user."""
from __future__ import annotations

import requests


def code_of(r):
    return r.status_code, r.json().get("code")


def test_duplicate_user_revoked_role_and_unknown_user(server_app):
    base, h = f"{server_app.url}/v1/sso", server_app.headers
    body = {"first_name": "Erin", "last_name": "Lee", "email": "erin@example.org"}
    assert requests.post(f"{base}/user/erin", json=body, headers=h, timeout=30).status_code == 201
    try:
        assert code_of(requests.post(f"{base}/user/erin", json=body, headers=h, timeout=30)) == (409, 7001)
        assert requests.post(f"{base}/user-role/erin/resource-manager", headers=h, timeout=30).status_code == 201
        assert requests.get(f"{base}/user-role/erin", headers=h, timeout=30).json() == ["resource-manager"]
        assert requests.delete(f"{base}/user-role/erin/resource-manager", headers=h, timeout=30).status_code == 204
        assert requests.get(f"{base}/user-role/erin", headers=h, timeout=30).json() == []
        got = requests.get(f"{base}/user/erin", headers=h, timeout=30).json()
        assert got == {"username": "erin", "firstName": "Erin", "lastName": "Lee", "email": "erin@example.org",
                       "realmRoles": []}
    finally:
        assert requests.delete(f"{base}/user/erin", headers=h, timeout=30).status_code == 204
    for r in (requests.get(f"{base}/user/erin", headers=h, timeout=30),
              requests.get(f"{base}/user-role/erin", headers=h, timeout=30),
              requests.delete(f"{base}/user-role/erin/resource-manager", headers=h, timeout=30)):
        assert code_of(r) == (404, 4002)

"""`ndex info` against BOSS's 500 for the children of a missing parent: one "not found" line at once."""
from __future__ import annotations

import responses

from ndex.cli.main import main

BASE = "http://127.0.0.1:9"  # a closed loopback port: only the mocks answer
CONN = ["--url", BASE, "--token", "0123456789abcdef0123456789abcdef01234567"]
SERVER_ERROR = "<!doctype html><html><head><title>Server Error (500)</title></head><body><h1>Server Error (500)</h1>"


def test_info_of_a_missing_collection_is_not_retried(capsys):
    with responses.RequestsMock() as rsps:
        rsps.get(f"{BASE}/v1/collection/gone/experiment/", status=500, body=SERVER_ERROR)
        rsps.get(f"{BASE}/v1/collection/gone", status=404,
                 json={"status": 404, "code": 4000, "message": "Collection gone not found"})
        assert main(["info", *CONN, "gone"]) == 3
        assert len(rsps.calls) == 2  # no 31 s of retries of the 500
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Collection gone not found" in err[0]

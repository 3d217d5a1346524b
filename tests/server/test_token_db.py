"""`ndex token create|list|revoke --db URL` manage the tokens of a PostgreSQL-backed server, whose
processes accept a new token and, within the documented cache time, refuse a revoked one."""
from __future__ import annotations

import time

import requests
from cluster import Cluster, ndex


def test_tokens_for_a_postgresql_server(tmp_path, fresh_postgres_url):
    cluster = Cluster(fresh_postgres_url, str(tmp_path / "store"), tmp_path)
    try:
        url = cluster.start(1)  # issues the admin token with `ndex token create --db`
        made = ndex("token", "create", "--db", fresh_postgres_url, "--user", "ann", "--role", "resource-manager")
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip().splitlines()[-1]
        headers = {"Authorization": f"Token {token}"}
        assert requests.get(f"{url}/v1/collection/", headers=headers, timeout=30).status_code == 200
        listing = ndex("token", "list", "--db", fresh_postgres_url)
        assert listing.returncode == 0 and "ann" in listing.stdout and "resource-manager" in listing.stdout
        assert token not in listing.stdout
        revoked = ndex("token", "revoke", "--db", fresh_postgres_url, "--user", "ann")
        assert revoked.returncode == 0 and "revoked 1 token" in revoked.stdout
        time.sleep(2.5)  # the server caches token lookups for cache_seconds (2 s by default)
        assert requests.get(f"{url}/v1/collection/", headers=headers, timeout=30).status_code == 401
        assert ndex("token", "revoke", "--db", fresh_postgres_url, "--user", "ann").returncode == 2
    finally:
        cluster.stop()

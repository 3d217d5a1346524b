"""No test names an address off this machine: every http(s)/ws URL in the tests points at loopback (or at a
`.invalid` name, which RFC 6761 guarantees never resolves, used with the resolver monkeypatched)."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
URL = re.compile(r"\b(?:https?|wss?|ftp)://(\[[0-9a-fA-F:]+\]|[A-Za-z0-9._-]+)")
LOOPBACK = re.compile(r"^(127(\.\d{1,3}){0,3}|localhost|\[::1\]|[A-Za-z0-9-]+\.invalid)$")


def named_hosts() -> list[tuple[str, int, str]]:
    found = []
    for path in sorted([*(ROOT / "tests").rglob("*.py"), *(ROOT / "examples").rglob("*.py")]):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            found += [(str(path.relative_to(ROOT)), number, host) for host in URL.findall(line)]
    return found


def test_every_url_in_the_tests_is_loopback():
    hosts = named_hosts()
    assert len(hosts) > 50  # the scan sees the suite's URLs at all
    outside = [f"{path}:{number}: {host}" for path, number, host in hosts if not LOOPBACK.match(host)]
    assert outside == []

"""Shared values of the client tests that check exact answers with `responses` (a uniquely named module,
so that it never shadows another; round trips run against the real server app: inprocess_boss.py)."""
from __future__ import annotations

TOKEN = "0123456789abcdef0123456789abcdef01234567"  # shaped like a real DRF token: 40 hex chars
BASE = "http://127.0.0.1:9"  # a closed loopback port: only the mocks answer

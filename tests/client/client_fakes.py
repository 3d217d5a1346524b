"""Shared values of the client tests (a uniquely named module, so that it never shadows another conftest)."""
from __future__ import annotations

TOKEN = "0123456789abcdef0123456789abcdef01234567"  # shaped like a real DRF token: 40 hex chars
BASE = "http://boss.test"

"""Server test fixtures: those of tests/fixtures_server.py (re-exported here only when the top-level
conftest has not already done so), plus an in-memory volume store for fast route tests."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

if "fixtures_server" not in sys.modules:
    from fixtures_server import *  # noqa: F403

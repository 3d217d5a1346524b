"""The store's recorded layout version and layout steps (ndex.server.migrate), on a directory and on S3."""
from __future__ import annotations

import pytest

from ndex.server import migrate
from ndex.server.arrays import StoreError


def test_an_unrecorded_store_is_layout_1_and_gets_its_marker(store):
    assert store.layout_version() is None
    state = migrate.store_state(store)
    assert state.recorded is None and [s.name for s in state.steps] == ["layout 1"]
    migrate.upgrade_store(store)
    assert store.layout_version() == migrate.STORE_LAYOUT
    assert migrate.store_state(store).steps == ()


def test_a_newer_layout_is_refused(store):
    store.record_layout(migrate.STORE_LAYOUT + 1)
    with pytest.raises(migrate.NewerRelease, match=f"layout {migrate.STORE_LAYOUT + 1}.*newer ndex"):
        migrate.upgrade_store(store)
    assert store.layout_version() == migrate.STORE_LAYOUT + 1


def test_a_damaged_marker_is_one_clear_error(store):
    store.record_layout(1)
    store.arrays.root.write("ndex-store.json", b"{not json").result()
    with pytest.raises(StoreError, match="damaged"):
        store.layout_version()


def test_layout_steps_run_in_order_and_a_failed_one_is_resumed(store, monkeypatch):
    runs = []

    def step(target):
        runs.append(target.layout_version())
        if len(runs) == 1:
            raise OSError("disk full half way")

    monkeypatch.setattr(migrate, "STORE_LAYOUT", 2)
    monkeypatch.setitem(migrate.LAYOUT_STEPS, 1, migrate.LayoutStep("rename every chunk", False, step))
    store.record_layout(1)
    with pytest.raises(migrate.UpgradeNeeded, match="ndex upgrade --data DIR"):
        migrate.upgrade_store(store)  # long: ndex serve does not run it
    assert runs == []
    with pytest.raises(OSError, match="half way"):
        migrate.upgrade_store(store, allow_long=True)
    assert store.layout_version() == 1  # the marker moves on only after the step
    migrate.upgrade_store(store, allow_long=True)
    assert runs == [1, 1] and store.layout_version() == 2

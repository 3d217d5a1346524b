"""The finished-slab record: runs stay merged and exact under any order of marks and unmarks."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ndex.geometry import Box, z_slabs
from ndex.sinks.ledger import SlabLedger

BOX = Box((0, 0, 3), (8, 8, 150))
SLABS = z_slabs(BOX)


@given(st.lists(st.tuples(st.booleans(), st.sampled_from(SLABS)), max_size=40))
def test_ledger_matches_a_plain_set(tmp_path_factory, ops):
    path = tmp_path_factory.mktemp("ledger") / "progress.json"
    ledger, expected = SlabLedger(path, {"k": 1}), set()
    for add, slab in ops:
        (ledger.mark if add else ledger.unmark)(slab)
        (expected.add if add else expected.discard)(slab)
    assert ledger.completed(SLABS) == expected
    reloaded = SlabLedger(path, {"k": 1})
    assert reloaded.load() == bool(ops)
    assert reloaded.completed(SLABS) == expected
    assert len(reloaded._runs) <= len(expected)


def test_a_ledger_of_another_pull_is_ignored(tmp_path):
    ledger = SlabLedger(tmp_path / "p.json", {"box": 1})
    ledger.mark(SLABS[0])
    other = SlabLedger(tmp_path / "p.json", {"box": 2})
    assert not other.load() and other.completed(SLABS) == set()

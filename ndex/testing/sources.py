"""The suite every source passes: read a small synthetic volume back exactly, slab by slab.

Subclass `SourceTests` in a test module and give `case(request, tmp_path)`: a `SourceSpec` of a
volume you wrote, the volume itself ((z, y, x) numpy array) and the source's first z.

    class TestMySource(SourceTests):
        def case(self, request, tmp_path):
            ...
            return SourceSpec(datasource="mine", ...), volume, 0
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from ndex.errors import OutOfBounds
from ndex.geometry import Box
from ndex.sources import Source, SourceSpec, open_source
from ndex.sources.base import read_box


class SourceTests:
    """Reads of a whole volume, of slabs inside it and outside it, validation, description and closing."""

    def case(self, request: Any, tmp_path: Any) -> tuple[SourceSpec, np.ndarray, int]:
        raise NotImplementedError("a SourceTests subclass says what it reads: (spec, volume, first z)")

    @pytest.fixture
    def opened(self, request: Any, tmp_path: Any) -> Iterator[tuple[Source, np.ndarray, int]]:
        spec, truth, z0 = self.case(request, tmp_path)
        source = open_source(spec)
        yield source, truth, z0
        source.close()

    def test_attributes_describe_the_volume(self, opened: Any) -> None:
        source, truth, z0 = opened
        assert isinstance(source, Source)
        assert source.dtype == truth.dtype
        assert source.shape_xy == (truth.shape[2], truth.shape[1])
        assert source.z_range == (z0, z0 + truth.shape[0])

    def test_whole_volume_reads_back_exactly(self, opened: Any) -> None:
        source, truth, _ = opened
        slab = source.read_slab(*source.z_range)
        assert slab.flags.c_contiguous and slab.dtype == truth.dtype
        np.testing.assert_array_equal(slab, truth)
        assert source.missing == []

    def test_a_slab_in_the_middle_is_those_slices(self, opened: Any) -> None:
        source, truth, z0 = opened
        np.testing.assert_array_equal(source.read_slab(z0 + 2, z0 + 5), truth[2:5])
        np.testing.assert_array_equal(source.read_slab(z0 + 1, z0 + 2), truth[1:2])

    def test_a_box_of_part_of_the_slices_is_those_voxels(self, opened: Any) -> None:
        source, truth, z0 = opened
        (x0, y0), (sx, sy) = source.origin_xy, source.shape_xy
        box = Box((x0 + 7, y0 + 3, z0 + 1), (x0 + sx - 5, y0 + sy // 2, z0 + 4))
        got = read_box(source, box)
        assert got.flags.c_contiguous
        np.testing.assert_array_equal(got, truth[1:4, 3:sy // 2, 7:sx - 5])
        with pytest.raises(OutOfBounds, match="not inside the source's x"):
            read_box(source, Box((x0, y0, z0), (x0 + sx + 1, y0 + 1, z0 + 1)))

    def test_slabs_outside_the_range_are_refused(self, opened: Any) -> None:
        source, truth, z0 = opened
        with pytest.raises(OutOfBounds, match="not inside the source's z range"):
            source.read_slab(z0, z0 + truth.shape[0] + 1)
        with pytest.raises(OutOfBounds):
            source.read_slab(z0 - 1, z0 + 1)

    def test_validate_passes_and_describe_is_one_line(self, opened: Any) -> None:
        source, _, _ = opened
        source.validate(sample=2)
        text = source.describe()
        assert text and "\n" not in text

    def test_close_is_idempotent(self, request: Any, tmp_path: Any) -> None:
        source = open_source(self.case(request, tmp_path)[0])
        source.close()
        source.close()

"""BigDataViewer's dataset.xml as an N5 source (`--datasource n5 --source dataset.xml`): the file BDV and
BigStitcher users open. It names the N5 (ImageLoader format bdv.n5) and gives each setup a name and a
voxel size; the setups are the channels (`--channel NAME` picks a setup by its name), and a level's
voxel size is the setup's times that level's downsamplingFactors.

    <SpimData>
      <SequenceDescription>
        <ImageLoader format="bdv.n5"><n5 type="relative">dataset.n5</n5></ImageLoader>
        <ViewSetups><ViewSetup><id>0</id><name>gfp</name>
          <voxelSize><unit>µm</unit><size>0.5 0.5 2.0</size></voxelSize></ViewSetup></ViewSetups>
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace

from ndex.errors import BadInput
from ndex.sources.base import SourceSpec
from ndex.sources.ts_store import child, kvstore, read_bytes, where
from ndex.sources.volume_formats import Located, boss_unit, locate_n5, pick


def locate_bdv_xml(url: str, spec: SourceSpec) -> Located:
    directory, _, name = url.rstrip("/").rpartition("/")
    store = kvstore(directory or ".", spec.s3_endpoint, spec.aws_profile)
    body = read_bytes(store, name)
    if body is None:
        raise BadInput(f"{where(store, name)} does not exist: fix --source")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise BadInput(f"{where(store, name)} is not XML ({exc}): --source must be a BigDataViewer dataset.xml") from None
    loader = root.find("SequenceDescription/ImageLoader")
    kind = loader.get("format") if loader is not None else None
    n5 = loader.find("n5") if loader is not None else None
    if kind != "bdv.n5" or n5 is None or not (n5.text or "").strip():
        raise BadInput(f"{where(store, name)} keeps its images as {kind or 'nothing ndex knows'}, not bdv.n5: "
                       "ndex reads BigDataViewer N5 (re-save the dataset as N5 in BigDataViewer or BigStitcher)")
    path = (n5.text or "").strip()
    n5_store = child(store, path) if n5.get("type", "relative") == "relative" else kvstore(path, spec.s3_endpoint, spec.aws_profile)
    setups = sorted(_setups(root), key=lambda s: s[0])
    labels = tuple(s[1] for s in setups)
    index = pick(spec.channel_index, len(setups), spec.channel, labels, "channel", where(store, name))
    located = locate_n5(n5_store, spec.source_level, setups[index][0], spec.time_index, _time_ids(root))
    unit, size = boss_unit(*setups[index][2:])
    if size is not None:
        factors = located.voxel_size or (1.0, 1.0, 1.0)
        size = (size[0] * factors[0], size[1] * factors[1], size[2] * factors[2])
    return replace(located, voxel_size=size or located.voxel_size, unit=unit or located.unit, channel_labels=labels,
                   channels=len(setups), kind="BigDataViewer XML + N5")


def _setups(root: ET.Element) -> list[tuple[int, str, str | None, tuple[float, float, float] | None]]:
    """(id, name, unit, voxel size x y z) of every ViewSetup."""
    found = []
    for setup in root.findall("SequenceDescription/ViewSetups/ViewSetup"):
        ident = int((setup.findtext("id") or "0").strip())
        sizes = (setup.findtext("voxelSize/size") or "").split()
        size = (float(sizes[0]), float(sizes[1]), float(sizes[2])) if len(sizes) == 3 else None
        found.append((ident, (setup.findtext("name") or f"setup{ident}").strip(),
                      (setup.findtext("voxelSize/unit") or "").strip() or None, size))
    return found


def _time_ids(root: ET.Element) -> tuple[int, ...] | None:
    """The time point ids the XML declares (`range` first..last, or a `list`/`pattern` such as '0, 3, 5-7'),
    None when it declares none (the N5's timepoint0, 1, ... are counted)."""
    points = root.find("SequenceDescription/Timepoints")
    if points is None:
        return None
    try:
        if points.get("type") == "range":
            return tuple(range(int(points.findtext("first") or 0), int(points.findtext("last") or 0) + 1))
        ids: list[int] = []
        for part in (points.findtext("integerpattern") or "").replace(" ", "").split(","):
            first, _, last = part.partition("-")
            ids.extend(range(int(first), int(last or first) + 1))
        return tuple(ids) or None
    except ValueError:
        raise BadInput(f"the BigDataViewer XML's Timepoints ({ET.tostring(points, 'unicode')[:80]}) are not "
                       "numbers: fix the XML") from None

"""ndpull --levels end to end: a real `ndex serve`, data written and downsampled through the BOSS API, every
level pulled into OME-Zarr and precomputed and compared with the server's own cutouts of that level."""
import json
import uuid

import numpy as np
import pytest
import zarr
from intern.remote.boss import BossRemote
from intern.resource.boss.resource import (
    ChannelResource,
    CollectionResource,
    CoordinateFrameResource,
    ExperimentResource,
)
from ngff_schemas import validate

from ndex.cli.pull import main as ndpull
from ndex.client import BossClient, ChannelRef
from ndex.transfer import resources

FRAME = ((100, 740), (0, 500), (0, 40))  # x starts at 100: levels >= 1 are clamped to the level-0 start
ISO_FRAME = ((0, 300), (0, 200), (0, 64))


def downsample(server, ref):
    """The library's own wait (ndpush --downsample): it raises unless the status ends DOWNSAMPLED."""
    with BossClient(server.remote) as client:
        assert resources.downsample(client, ref, poll=0.2, timeout=120).status["status"] == "DOWNSAMPLED"


@pytest.fixture(scope="module")
def pyramids(ndex_server):
    """An anisotropic (4x4x40 nm, frame from x 100) and an isotropic (8 nm) experiment, 3 levels each, built."""
    rmt = BossRemote(ndex_server.intern_config())
    coll = f"pyr{uuid.uuid4().hex[:8]}"
    rmt.create_project(CollectionResource(coll))
    rng = np.random.default_rng(3)
    for exp, frame, voxel, method in (("aniso", FRAME, (4, 4, 40), "anisotropic"),
                                      ("iso", ISO_FRAME, (8, 8, 8), "isotropic")):
        (x0, x1), (y0, y1), (z0, z1) = frame
        rmt.create_project(CoordinateFrameResource(f"{coll}_{exp}", "", x0, x1, y0, y1, z0, z1, *voxel, "nanometers"))
        rmt.create_project(ExperimentResource(exp, coll, f"{coll}_{exp}", hierarchy_method=method,
                                              num_hierarchy_levels=3))
        for name, dtype, kind, sources in (("img16", "uint16", "image", []), ("ann", "uint64", "annotation", ["img16"])):
            chan = rmt.create_project(ChannelResource(name, coll, exp, kind, datatype=dtype, sources=sources))
            shape = (z1 - z0, y1 - y0, x1 - x0)
            arr = rng.integers(1, 2**12 if kind == "image" else 50, size=shape, dtype=dtype)
            rmt.create_cutout(chan, 0, [x0, x1], [y0, y1], [z0, z1], arr)
            downsample(ndex_server, ChannelRef(coll, exp, name))
    rmt.create_project(ChannelResource("flat", coll, "aniso", "image", datatype="uint8"))  # never downsampled
    return coll, rmt


def args(server, coll, exp, chan, *extra):
    return ["--url", server.url, "--token", server.token, "--collection", coll, "--experiment", exp,
            "--channel", chan, "-q", *extra]


def expected_box(box, res, frame_start, z_halves):
    """The region (at level 0) at level `res`, computed here independently of ndex: floor / ceil, then the
    level-0 frame start BOSS checks at every level."""
    f = 2**res
    fz = f if z_halves else 1
    start = [box[0][0] // f, box[1][0] // f, box[2][0] // fz]
    stop = [-(-box[0][1] // f), -(-box[1][1] // f), -(-box[2][1] // fz)]
    start = [max(s, lo) for s, lo in zip(start, frame_start)]
    return list(zip(start, stop))


def server_cutout(rmt, coll, exp, chan, res, box):
    channel = rmt.get_channel(chan, coll, exp)
    return rmt.get_cutout(channel, res, list(box[0]), list(box[1]), list(box[2]))


REGION = ((137, 650), (5, 430), (3, 38))


def test_ome_zarr_v3_pyramid_matches_the_server_level_by_level(ndex_server, pyramids, tmp_path):
    coll, rmt = pyramids
    region = [str(v) for r in REGION for v in r]
    assert ndpull(args(ndex_server, coll, "aniso", "img16", "--x", *region[:2], "--y", *region[2:4],
                       "--z", *region[4:], "--levels", "0-2", "--stack_filename", "vol.ome.zarr",
                       "--outdir", str(tmp_path))) == 0
    path = tmp_path / "vol.ome.zarr"
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob("*.json"))
    attrs = json.loads((path / "zarr.json").read_text())["attributes"]
    validate(attrs, "0.5")
    group = zarr.open_group(str(path), mode="r")
    (ms,) = attrs["ome"]["multiscales"]
    for res in range(3):
        box = expected_box(REGION, res, (100, 0, 0), z_halves=False)
        np.testing.assert_array_equal(group[str(res)][...], server_cutout(rmt, coll, "aniso", "img16", res, box))
        scale, shift = ms["datasets"][res]["coordinateTransformations"]
        f = 2**res
        assert scale["scale"] == [40.0, 4.0 * f, 4.0 * f]
        assert shift["translation"] == [box[2][0] * 40.0, box[1][0] * 4.0 * f, box[0][0] * 4.0 * f]
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    (image,) = [node for node in Reader(parse_url(str(path)))() if node.data]  # the `ome-zarr` package's reader
    assert [np.asarray(level).shape for level in image.data] == [group[str(r)].shape for r in range(3)]
    np.testing.assert_array_equal(np.asarray(image.data[2]), group["2"][...])
    assert attrs["ndex"]["source"] == {"url": ndex_server.url, "collection": coll, "experiment": "aniso",
                                       "channel": "img16", "channel_type": "image", "iso": False}
    assert ndex_server.token not in (path / "zarr.json").read_text()


def test_zarr_v2_of_an_isotropic_hierarchy_halves_z_too(ndex_server, pyramids, tmp_path):
    coll, rmt = pyramids
    assert ndpull(args(ndex_server, coll, "iso", "img16", "--full_extent", "--levels", "0-2", "--zarr_version", "2",
                       "--output", "zarr", "--stack_filename", "iso.ome.zarr", "--outdir", str(tmp_path))) == 0
    path = tmp_path / "iso.ome.zarr"
    attrs = json.loads((path / ".zattrs").read_text())
    validate(attrs, "0.4")
    scales = [ds["coordinateTransformations"][0]["scale"] for ds in attrs["multiscales"][0]["datasets"]]
    assert scales == [[8.0, 8.0, 8.0], [16.0, 16.0, 16.0], [32.0, 32.0, 32.0]]
    for res in range(3):
        box = expected_box(ISO_FRAME, res, (0, 0, 0), z_halves=True)
        got = zarr.open_array(str(path / str(res)), mode="r")[...]
        np.testing.assert_array_equal(got, server_cutout(rmt, coll, "iso", "img16", res, box))


def test_precomputed_segmentation_pyramid_opens_in_cloudvolume(ndex_server, pyramids, tmp_path):
    from cloudvolume import CloudVolume

    coll, rmt = pyramids
    region = [str(v) for r in REGION for v in r]
    assert ndpull(args(ndex_server, coll, "aniso", "ann", "--x", *region[:2], "--y", *region[2:4], "--z", *region[4:],
                       "--levels", "0-2", "--output", "precomputed", "--outdir", str(tmp_path))) == 0
    (path,) = tmp_path.glob("*.precomputed")
    assert path.name == f"{coll}_aniso_ann_x137-650_y5-430_z3-38.precomputed"
    info = json.loads((path / "info").read_text())
    assert info["type"] == "segmentation" and {s["encoding"] for s in info["scales"]} == {"compressed_segmentation"}
    assert info["ndex"]["source"]["url"] == ndex_server.url
    for mip in range(3):
        (x0, x1), (y0, y1), (z0, z1) = box = expected_box(REGION, mip, (100, 0, 0), z_halves=False)
        assert info["scales"][mip]["voxel_offset"] == [x0, y0, z0]
        assert info["scales"][mip]["resolution"] == [4.0 * 2**mip, 4.0 * 2**mip, 40.0]
        cv = CloudVolume(f"file://{path}", mip=mip, progress=False)
        got = np.asarray(cv[x0:x1, y0:y1, z0:z1])[..., 0].transpose(2, 1, 0)
        np.testing.assert_array_equal(got, server_cutout(rmt, coll, "aniso", "ann", mip, box))


def test_a_dry_run_describes_every_level_and_writes_nothing(ndex_server, pyramids, tmp_path, capsys):
    coll, _ = pyramids
    assert ndpull(args(ndex_server, coll, "iso", "img16", "--full_extent", "--levels", "0-2", "--output", "zarr",
                       "--dry_run", "--outdir", str(tmp_path / "out"))) == 0
    out = capsys.readouterr().out
    assert [line.split(" at resolution ")[1] for line in out.splitlines() if line.startswith("channel")] == ["0", "1", "2"]
    assert "region    x 0:75, y 0:50, z 0:16" in out  # level 2 of 300x200x64, z halving too
    assert not (tmp_path / "out").exists()


def test_single_level_pulls_write_zarr_v3_and_precomputed(ndex_server, pyramids, tmp_path):
    coll, rmt = pyramids
    assert ndpull(args(ndex_server, coll, "iso", "img16", "--full_extent", "--res", "1", "--outdir", str(tmp_path),
                       "--stack_filename", "r1.ome.zarr")) == 0
    assert ndpull(args(ndex_server, coll, "iso", "img16", "--full_extent", "--res", "1", "--outdir", str(tmp_path),
                       "--stack_filename", "r1.precomputed")) == 0
    box = expected_box(ISO_FRAME, 1, (0, 0, 0), z_halves=True)
    truth = server_cutout(rmt, coll, "iso", "img16", 1, box)
    np.testing.assert_array_equal(zarr.open_group(str(tmp_path / "r1.ome.zarr"), mode="r")["0"][...], truth)
    info = json.loads((tmp_path / "r1.precomputed" / "info").read_text())
    assert info["type"] == "image" and info["scales"][0]["encoding"] == "raw" and info["ndex"]["resolution"] == 1


class LosesLevels:
    """The real client, except that every cutout at `res` >= `from_res` fails (a server gone after level 0)."""

    def __init__(self, client, from_res):
        self.client, self.from_res = client, from_res

    def __getattr__(self, name):
        return getattr(self.client, name)

    def get_cutout(self, ref, res, *a, **kw):
        if res >= self.from_res:
            raise RuntimeError("connection lost")
        return self.client.get_cutout(ref, res, *a, **kw)


def test_an_interrupted_pyramid_pull_resumes_at_the_level_it_stopped(ndex_server, pyramids, tmp_path):
    from ndex.transfer.download import PullSpec, TransferOptions, pull
    from ndex.transfer.pyramid import plan_levels

    coll, _ = pyramids
    spec = PullSpec(ref=ChannelRef(coll, "aniso", "img16"), levels=(0, 2), outdir=tmp_path,
                    stack_filename="r.ome.zarr")
    options = TransferOptions(threads=2)
    with BossClient(ndex_server.remote) as client:
        plans = plan_levels(client, spec, options)
        first = pull(spec, options, client=LosesLevels(client, 1))
        assert not first.ok and first.files == [] and not (tmp_path / "r.ome.zarr").exists()
        assert all("at resolution 1" in str(block) for block in first.failures)
        again = pull(spec, options, client=client)
    assert again.ok and again.files == [tmp_path / "r.ome.zarr"]
    assert again.blocks_skipped == plans[0].nblocks  # level 0 was not fetched again
    assert again.blocks_done == plans[1].nblocks + plans[2].nblocks


@pytest.mark.parametrize("extra,text", [
    (("--levels", "0-5", "--stack_filename", "v.ome.zarr"), "resolution 3 is outside channel"),
    (("--levels", "0-2", "--stack_filename", "v.tif"),
     "--levels 0-2 writes a pyramid, which output stack cannot hold: write zarr or precomputed"),
    (("--levels", "0-1", "--stack_filename", "v.ome.zarr", "--channel", "flat"), "has never been built"),
    (("--levels", "3-1", "--output", "zarr"), "--levels 3-1 is empty or inverted"),
    (("--levels", "1-2", "--res", "2", "--output", "zarr"), "--res 2 is not the first of levels 1-2"),
    (("--output", "precomputed", "--encoding", "jpeg"), "precomputed encoding jpeg cannot hold uint16 voxels"),
    (("--output", "precomputed", "--encoding", "compressed_segmentation"),
     "compressed_segmentation cannot hold uint16 voxels (it takes uint32, uint64): use --encoding raw"),
    (("--output", "precomputed", "--compression", "zlib"), "precomputed chunks are encoded, not compressed: drop "
                                                           "--compression zlib"),
    (("--stack_filename", "v.tif", "--zarr_version", "2"), "--zarr_version 2 is for OME-Zarr output"),
    (("--stack_filename", "v.ome.zarr", "--encoding", "raw"), "--encoding raw is for precomputed output"),
])
def test_bad_pyramid_requests_are_one_line_and_write_nothing(ndex_server, pyramids, tmp_path, capsys, extra, text):
    coll, _ = pyramids
    chan = "img16"
    if "--channel" in extra:
        chan = extra[extra.index("--channel") + 1]
        extra = extra[:extra.index("--channel")] + extra[extra.index("--channel") + 2:]
    assert ndpull([*args(ndex_server, coll, "aniso", chan, "--full_extent", "--outdir", str(tmp_path / "out")),
                   *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert text in err and len(err.splitlines()) == 1 and err.startswith("error:"), err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_a_planned_pyramid_pull_writes_one_pyramid_per_job(ndex_server, pyramids, tmp_path, monkeypatch, capsys):
    from ndex.cli.main import main

    coll, rmt = pyramids
    monkeypatch.chdir(tmp_path)  # jobs run where the plan was made
    monkeypatch.setenv("NDEX_URL", ndex_server.url)
    monkeypatch.setenv("NDEX_TOKEN", ndex_server.token)
    argv = ["plan", "pull", "--collection", coll, "--experiment", "aniso", "--channel", "img16", "--full_extent",
            "--levels", "0-2", "--stack_filename", "v.ome.zarr", "--outdir", "out", "--threads", "2", "--jobs", "2"]
    assert main([*argv, "--format", "json", "--plan_dir", "dry"]) == 0
    assert capsys.readouterr().out.count("ndex run ") == 2
    job = json.loads((tmp_path / "dry" / "jobs" / "job_0.json").read_text())
    assert job["spec"]["levels"] == [0, 2] and job["spec"]["stack_filename"] == "v_z0000000-0000032.ome.zarr"
    # the plan counts every level's bytes (x and y halve per level, each clamped to the frame's x start)
    boxes = [expected_box(FRAME, res, (100, 0, 0), z_halves=False) for res in range(3)]
    assert job["nbytes"] == sum((x1 - x0) * (y1 - y0) for (x0, x1), (y0, y1), _ in boxes) * 32 * 2
    assert main([*argv, "--run", "local", "--plan_dir", "ran"]) == 0
    for name, (z0, z1) in (("v_z0000000-0000032.ome.zarr", (0, 32)), ("v_z0000032-0000040.ome.zarr", (32, 40))):
        group = zarr.open_group(str(tmp_path / "out" / name), mode="r")
        for res in range(3):
            box = expected_box((FRAME[0], FRAME[1], (z0, z1)), res, (100, 0, 0), z_halves=False)
            np.testing.assert_array_equal(group[str(res)][...], server_cutout(rmt, coll, "aniso", "img16", res, box))


def test_ome_tiff_of_a_level_records_where_it_lies_and_whence_it_came(ndex_server, pyramids, tmp_path):
    import tifffile

    coll, rmt = pyramids
    assert ndpull(args(ndex_server, coll, "aniso", "img16", "--x", "160", "300", "--y", "10", "200", "--z", "5", "9",
                       "--res", "1", "--stack_filename", "r1.ome.tif", "--outdir", str(tmp_path))) == 0
    with tifffile.TiffFile(tmp_path / "r1.ome.tif") as tif:
        data, ome, tags = tif.asarray(), tif.ome_metadata, tif.pages[0].tags
    box = [(160, 300), (10, 200), (5, 9)]
    np.testing.assert_array_equal(data, server_cutout(rmt, coll, "aniso", "img16", 1, box))
    assert 'PositionX="1280.0"' in ome and 'PositionY="80.0"' in ome  # x 160, y 10 at 8 nm (level 1)
    assert 'PositionZ="200.0"' in ome and 'PositionZ="320.0"' in ome  # z 5..8 at 40 nm
    assert 'PhysicalSizeX="8.0"' in ome and tags["ResolutionUnit"].value == 3
    assert tags["XResolution"].value[0] / tags["XResolution"].value[1] == pytest.approx(1e7 / 8)
    assert ndex_server.url in ome and ndex_server.token not in ome and f"&quot;collection&quot;: &quot;{coll}" in ome


def test_one_level_into_a_tiff_is_a_pull_at_that_level(ndex_server, pyramids, tmp_path):
    import tifffile

    coll, rmt = pyramids
    assert ndpull(args(ndex_server, coll, "iso", "img16", "--full_extent", "--levels", "1", "--stack_filename", "l1.tif",
                       "--outdir", str(tmp_path))) == 0
    box = expected_box(ISO_FRAME, 1, (0, 0, 0), z_halves=True)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "l1.tif"), server_cutout(rmt, coll, "iso", "img16", 1, box))


def test_planned_pyramids_of_an_isotropic_hierarchy_tile_every_level(ndex_server, pyramids, tmp_path, monkeypatch):
    """z halves per level: the jobs' pyramids, placed by their own translations, cover each level of the
    whole pull exactly once (no slice twice, none missing) with the server's voxels."""
    from ndex.cli.main import main

    coll, rmt = pyramids
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NDEX_URL", ndex_server.url)
    monkeypatch.setenv("NDEX_TOKEN", ndex_server.token)
    argv = ["plan", "pull", "--collection", coll, "--experiment", "iso", "--channel", "ann", "--full_extent",
            "--levels", "0-2", "--stack_filename", "v.ome.zarr", "--outdir", "out", "--threads", "2", "--jobs", "3"]
    assert main([*argv, "--run", "local", "--plan_dir", "ran"]) == 0
    groups = [zarr.open_group(str(p), mode="r") for p in sorted((tmp_path / "out").glob("v_z*.ome.zarr"))]
    assert len(groups) == 3
    for res in range(3):
        whole = expected_box(ISO_FRAME, res, (0, 0, 0), z_halves=True)
        covered = np.zeros(whole[2][1] - whole[2][0], int)
        for group in groups:
            dataset = group.attrs["ome"]["multiscales"][0]["datasets"][res]
            scale, shift = (t[k] for t, k in zip(dataset["coordinateTransformations"], ("scale", "translation")))
            assert scale == [8.0 * 2**res] * 3
            z0 = round(shift[0] / scale[0])
            part = group[str(res)][...]
            covered[z0 - whole[2][0]: z0 - whole[2][0] + part.shape[0]] += 1
            box = (whole[0], whole[1], (z0, z0 + part.shape[0]))
            np.testing.assert_array_equal(part, server_cutout(rmt, coll, "iso", "ann", res, box))
        assert covered.tolist() == [1] * len(covered)

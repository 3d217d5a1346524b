"""`ndex plan --run`: a push into a channel that is not there (or cannot take the data) is refused before a
plan exists or a job starts, and the plan's exit code says what failed, as a single job's would."""
from __future__ import annotations

from pathlib import Path

import pytest

from ndex.cli import plan as plan_cli
from ndex.cli.main import main
from ndex.client import ChannelRef
from ndex.jobs.runners import Outcome
from ndex.jobs.spec import DONE, FAILED, JobState


def push_args(*extra: str) -> list[str]:
    return ["plan", "push", "--collection", "c", "--experiment", "e", "--channel", "ch", "--base_path", "slices",
            "--base_filename", "img_<p:4>", "--z_range", "0", "40", "--workers", "2", "--run", "local",
            "--plan_dir", "p", *extra]


@pytest.fixture
def planner_talks_to(inprocess_boss, monkeypatch):
    monkeypatch.setattr(plan_cli, "open_client", lambda args, threads=1: inprocess_boss.client(recorded=False))
    return inprocess_boss


@pytest.mark.parametrize("channel, datatype, depth, code, message", [
    (None, "uint16", 64, 3, "collection c does not exist: the same command with --create_resources creates it"),
    ("ch", "uint8", 64, 2, "holds uint8 but the images are uint16: pass --datatype uint8"),
    ("ch", "uint16", 16, 2, "z range 0:40 lies outside the coordinate frame"),
])
def test_a_run_into_a_channel_that_cannot_take_the_data_is_refused_before_anything_runs(
        planner_talks_to, tiff_volume, tmp_path, monkeypatch, capsys, channel, datatype, depth, code, message):
    monkeypatch.chdir(tmp_path)
    if channel:
        planner_talks_to.make_channel(ChannelRef("c", "e", channel), datatype, extent=(600, 300, depth))
    assert main(push_args()) == code
    err = capsys.readouterr().err
    assert message in err and err.count("error:") == 1
    assert not Path("p").exists() and not planner_talks_to.seen  # no plan written, no data sent


def outcome(state: str, code: int | None) -> Outcome:
    return Outcome(Path("jobs/job_0.json"), JobState(state=state, exit_code=code))


@pytest.mark.parametrize("codes, expected", [
    ([(DONE, 0), (DONE, 0)], 0),
    ([(DONE, 0), (FAILED, 2)], 2),  # a bad slice: the bad-input code, as `ndex run` of that job says
    ([(FAILED, 3), (FAILED, 3)], 3),
    ([(FAILED, 4), (DONE, 0)], 4),
    ([(FAILED, 2), (FAILED, 3)], 1),  # different failures: just "failed"
    ([(FAILED, 130)], 1),
])
def test_the_plan_exits_with_the_code_its_failed_jobs_agree_on(codes, expected):
    assert plan_cli.exit_code_of([outcome(s, c) for s, c in codes]) == expected

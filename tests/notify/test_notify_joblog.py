"""The job log file: timestamps, INFO and up from every ndex logger, secrets never written; tails and names."""
from __future__ import annotations

import logging
import re
import tracemalloc
from pathlib import Path

import pytest

from ndex.errors import SinkError, UsageError
from ndex.notify import job_log_name, log_tail, open_job_log, report_message

API_TOKEN = "boss-api-token-0123456789abcdef"
SLACK_TOKEN = "xoxb-1111-2222-slacksecret"
STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} ")


@pytest.fixture
def job_log(tmp_path: Path):
    path = tmp_path / "logs" / "ingest_log_c_e_ch.txt"
    path.parent.mkdir()
    handler = open_job_log(path, secrets=[API_TOKEN, SLACK_TOKEN, ""])
    yield path
    handler.close()


def test_lines_are_timestamped_and_below_info_is_left_out(job_log: Path):
    logging.getLogger("ndex.transfer.upload").info("posted block %s", (0, 512))
    logging.getLogger("ndex.transfer.upload").debug("noise")
    logging.getLogger("elsewhere").warning("not ours")

    lines = job_log.read_text().splitlines()
    assert len(lines) == 1
    assert STAMP.match(lines[0]) and lines[0].endswith("INFO ndex.transfer.upload: posted block (0, 512)")


def test_secrets_are_redacted_in_messages_and_args(job_log: Path):
    log = logging.getLogger("ndex.cli.push")
    log.info("token is %s", API_TOKEN)
    log.warning(f"slack {SLACK_TOKEN} in the message itself")
    log.error("dict arg %(t)s", {"t": SLACK_TOKEN})

    text = job_log.read_text()
    assert API_TOKEN not in text and SLACK_TOKEN not in text and "xoxb" not in text
    assert text.count("***") == 3


def test_secrets_are_redacted_in_tracebacks(job_log: Path):
    log = logging.getLogger("ndex.client")
    try:
        raise RuntimeError(f"server rejected Authorization: Token {API_TOKEN}")
    except RuntimeError:
        log.error("request failed", exc_info=True)
    try:
        raise ValueError(SLACK_TOKEN)
    except ValueError:
        log.exception("again")
    log.info("where", stack_info=True)

    text = job_log.read_text()
    assert "Traceback (most recent call last)" in text and "RuntimeError: server rejected" in text
    assert API_TOKEN not in text and SLACK_TOKEN not in text


def test_a_traceback_formatted_earlier_is_redacted_too(job_log: Path):
    log = logging.getLogger("ndex")
    try:
        raise RuntimeError(API_TOKEN)
    except RuntimeError:
        record = log.makeRecord("ndex", logging.ERROR, __file__, 1, "boom", None, __import__("sys").exc_info())
    record.exc_text = logging.Formatter().formatException(record.exc_info)  # as another handler would
    log.handle(record)

    assert API_TOKEN not in job_log.read_text()


def test_a_broken_format_call_does_not_raise(job_log: Path):
    logging.getLogger("ndex").info("two %s %s", "args?")  # logging itself reports such calls; we must not raise

    assert "two %s %s" in job_log.read_text()


def test_close_detaches_the_handler_and_restores_the_level(tmp_path: Path):
    ndex_logger = logging.getLogger("ndex")
    before = ndex_logger.level
    handler = open_job_log(tmp_path / "job.txt")
    assert handler in ndex_logger.handlers
    handler.close()
    logging.getLogger("ndex.x").warning("after close")

    assert handler not in ndex_logger.handlers and ndex_logger.level == before
    assert "after close" not in (tmp_path / "job.txt").read_text()


def test_a_log_is_appended_to_as_ndex_1_did(tmp_path: Path):
    path = tmp_path / "job.txt"
    for run in ("first", "second"):
        handler = open_job_log(path)
        logging.getLogger("ndex").info("%s run", run)
        handler.close()

    assert [line.split(": ")[-1] for line in path.read_text().splitlines()] == ["first run", "second run"]


def test_unwritable_log_path_is_a_sink_error(tmp_path: Path):
    with pytest.raises(SinkError, match="cannot open job log .*choose a writable log path"):
        open_job_log(tmp_path / "missing-dir" / "job.txt")


def test_log_tail_returns_the_last_lines(tmp_path: Path):
    path = tmp_path / "log.txt"
    path.write_text("".join(f"line {i}\n" for i in range(100)))

    assert log_tail(path, 3) == "line 97\nline 98\nline 99"
    assert log_tail(path, 500).splitlines()[0] == "line 0"
    assert log_tail(tmp_path / "absent.txt") == ""


def test_log_tail_of_a_big_file_reads_only_the_end(tmp_path: Path):
    path = tmp_path / "big.txt"
    with open(path, "wb") as fh:
        fh.truncate(256 * 1024 * 1024)  # sparse: 256 MiB of nothing before the last lines
        fh.seek(0, 2)
        fh.write(b"".join(b"tail line %d\n" % i for i in range(50)))
    tracemalloc.start()
    try:
        tail = log_tail(path, 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert tail.splitlines() == [f"tail line {i}" for i in range(30, 50)]
    assert peak < 256 * 1024


def test_log_tail_of_one_endless_line_is_capped(tmp_path: Path):
    path = tmp_path / "oneline.txt"
    path.write_bytes(b"x" * 1_000_000)

    assert len(log_tail(path, 5, max_bytes=4096)) == 4096


def test_job_log_name_matches_ndex_1():
    assert job_log_name("coll", "exp", "chan") == "ingest_log_coll_exp_chan.txt"


def test_job_log_name_with_a_z_range_keeps_parallel_jobs_apart():
    assert job_log_name("coll", "exp", "chan", (0, 16)) == "ingest_log_coll_exp_chan_0_16.txt"
    assert job_log_name("coll", "exp", "chan", (16, 32)) != job_log_name("coll", "exp", "chan", (0, 16))


@pytest.mark.parametrize("names", [("", "e", "c"), ("a/b", "e", "c"), ("c", "e", "..\\x")])
def test_job_log_name_rejects_path_like_names(names):
    with pytest.raises(UsageError, match="path separators"):
        job_log_name(*names)


def test_report_message_has_title_lines_and_tail_block():
    text = report_message("ndpush finished: coll/exp/chan", ["blocks: 10 of 10", "failed: 0"],
                          "last line 1\nlast line 2\n")

    assert text == ("*ndpush finished: coll/exp/chan*\nblocks: 10 of 10\nfailed: 0\n"
                    "```\nlast line 1\nlast line 2\n```")


def test_report_message_escapes_slack_markup_and_bounds_the_tail():
    text = report_message("a <b> & c", ["img_<p:4>.tif"], "```\n" + "z" * 10_000)

    assert "&lt;b&gt; &amp; c" in text and "img_&lt;p:4&gt;.tif" in text
    assert text.count("```") == 2 and len(text) < 4000


def test_report_message_without_tail():
    assert report_message("started", []) == "*started*"
    assert report_message("started", ["x"], "  \n") == "*started*\nx"

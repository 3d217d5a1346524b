"""`ndex plan push` to a plan directory (json, slurm) and `ndex run` on its files, without a server."""
from __future__ import annotations

import json
import shlex

from ndex.cli.main import main
from ndex.geometry import Box
from ndex.jobs.spec import load_plan, read_job
from ndex.transfer.options import TransferOptions
from ndex.transfer.push_plan import PushSpec
from ndex.transfer.resources import CreateSpec


def args(*extra: str) -> list[str]:
    return ["plan", "push", "--collection", "c", "--experiment", "e", "--channel", "ch", "--base_path", "slices",
            "--base_filename", "img_<p:4>", "--x_extent", "0", "600", "--y_extent", "0", "300", "--z_extent",
            "0", "40", "--datatype", "uint16", "--create_resources", "--workers", "2", *extra]


def test_json_plan_directory_holds_one_spec_per_job(tiff_volume, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(args("--format", "json", "--plan_dir", "p", "--throughput", "50MB/s")) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    files = load_plan("p")
    assert printed == [f"ndex run {files.create}"] + [f"ndex run {p}" for p in files.jobs]
    jobs = [read_job(p) for p in files.jobs]
    assert [j.z for j in jobs] == [(0, 32), (32, 40)]
    assert all(j.cwd == str(tmp_path) and j.seconds > 0 and j.memory > 0 for j in jobs)
    raw = json.loads(files.jobs[1].read_text())
    assert {"kind", "spec", "options"} <= set(raw) and raw["kind"] == "push"
    assert "argv" not in raw and "token" not in json.dumps(raw)
    spec, options = PushSpec.from_dict(jobs[1].spec), TransferOptions.from_dict(jobs[1].options)
    assert spec.source.z_range == (32, 40) and spec.ref.path == "c/e/ch" and options.threads == 8
    log_dir = files.root / "logs" / "job_1"
    assert jobs[1].log_dir == str(log_dir)
    assert options.manifest == str(log_dir / "ingest_log_c_e_ch_32_40.txt.manifest.sqlite")
    create = read_job(files.create)
    assert CreateSpec.from_dict(create.spec).resources.frame == Box((0, 0, 0), (600, 300, 40))
    assert json.loads((files.root / "plan.json").read_text())["create"] == "jobs/create.json"
    # a data job will not start before the create step is done: one line, exit code 2, nothing run
    assert main(["run", str(files.jobs[0])]) == 2
    assert "not created yet" in capsys.readouterr().err


def test_slurm_plan_writes_an_array_script(tiff_volume, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(args("--format", "slurm", "--plan_dir", "s", "--memory_per_worker", "2GB", "--jobs", "3")) == 0
    line = capsys.readouterr().out.strip()
    files = load_plan("s")
    script = files.root / "ndex_plan.sbatch"
    assert shlex.split(line) == ["ndex", "run", str(files.create), "&&", "sbatch", str(script)]
    text = script.read_text()
    assert "#SBATCH --array=0-2%2" in text and "#SBATCH --cpus-per-task=8" in text
    assert (files.root / "logs").is_dir()


def test_windows_quoting(tiff_volume, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(args("--format", "cmd")) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("ndpush --collection c ") for line in lines)
    assert "--base_filename \"img_<p:4>\"" in lines[1]  # cmd.exe would take a bare < as a redirection


def test_run_is_exclusive_with_other_formats(tiff_volume, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(args("--format", "slurm", "--run", "local")) == 2
    assert "drop --format slurm" in capsys.readouterr().err
    assert main(args("--run", "ssh://x")) == 2
    assert "use local or dask://HOST:PORT" in capsys.readouterr().err


def test_no_token_is_written_into_a_plan(tiff_volume, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(args("--format", "json", "--plan_dir", "p", "--token", "s3cr3t-t0ken",
                     "--url", "http://127.0.0.1:9")) == 0
    assert "not written into the jobs" in capsys.readouterr().err
    files = load_plan("p")
    for path in (files.create, *files.jobs):
        assert "s3cr3t-t0ken" not in path.read_text() and read_job(path).url == "http://127.0.0.1:9"
    assert main(args("--token", "s3cr3t-t0ken")) == 0
    assert "s3cr3t-t0ken" not in capsys.readouterr().out

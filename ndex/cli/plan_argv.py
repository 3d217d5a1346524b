"""A planned job as the ndex 1.x command line that does the same: `ndpush ...` / `ndpull ...`.

Rendered from the job's spec and options (the contract), never from the planner's own arguments, so
the shell output and `ndex run` cannot disagree. No token is written: set NDEX_TOKEN or a config file
where the commands run.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from ndex.jobs.spec import CREATE, JobSpec
from ndex.sources import SourceSpec
from ndex.transfer.options import TransferOptions
from ndex.transfer.pull_plan import PullSpec
from ndex.transfer.push_plan import PushSpec
from ndex.transfer.resources import CreateSpec

SOURCE_FLAGS = {  # SourceSpec field -> ndpush flag (fields left at their default are not written)
    "datasource": "--datasource", "base_path": "--base_path", "base_filename": "--base_filename",
    "extension": "--extension", "z_step": "--z_step", "x_extent": "--x_extent", "y_extent": "--y_extent",
    "z_range": "--z_range", "datatype": "--datatype", "warn_missing_files": "--warn_missing_files",
    "rgb_channel": "--rgb_channel", "s3_bucket": "--s3_bucket_name", "aws_profile": "--aws_profile",
    "render_base_url": "--render_baseURL", "render_owner": "--render_owner", "render_project": "--render_project",
    "render_stack": "--render_stack", "render_channel": "--render_channel", "render_scale": "--render_scale",
    "render_window": "--render_window", "limit_x": "--limit_x", "limit_y": "--limit_y", "limit_z": "--limit_z",
    "tile_pattern": "--tile_pattern", "tile_size": "--tile_size", "source_url": "--source",
    "source_level": "--source_level", "channel_index": "--source_channel_index",
}
DEFAULT_SOURCE = SourceSpec()
DEFAULT_OPTIONS = TransferOptions()


def words(flag: str, value: Any) -> list[str]:
    """`--flag value...`; a true bool is the bare flag, None and False are nothing."""
    if value is None or value is False:
        return []
    if value is True:
        return [flag]
    if isinstance(value, (list, tuple)):
        return [flag, *(str(v) for v in value)]
    return [flag, str(value)]


def connection(job: JobSpec) -> list[str]:
    notify = job.notify or {}
    return (words("--url", job.url) + words("--config_file", job.config_file)
            + words("--slack_token_file", notify.get("token_file")) + words("--slack_usr", notify.get("user"))
            + words("--slack_channel", notify.get("channel")))


def ref_words(ref: Any) -> list[str]:
    return ["--collection", ref.collection, "--experiment", ref.experiment, "--channel", ref.channel]


def source_words(source: SourceSpec) -> list[str]:
    """The ndpush flags that open `source` (its channel, filling <ch>, is ndpush's --channel)."""
    out = []
    for name, flag in SOURCE_FLAGS.items():
        value = getattr(source, name)
        if value != getattr(DEFAULT_SOURCE, name):
            out += words(flag, value)
    return out


def push_words(spec: PushSpec) -> list[str]:
    out = ref_words(spec.ref) + source_words(spec.source)
    if any(spec.offsets):
        out += words("--forced_offsets", spec.offsets)
    out += words("--time_range", spec.time_range)
    return out + words("--res", spec.res or None) + words("--post_zero_blocks", spec.post_zero_blocks)


def option_words(options: TransferOptions, kind: str) -> list[str]:
    out = words("--threads", options.threads) + words("--block_size", options.block_bytes)
    out += words("--max_memory", options.max_memory)
    if kind == "push":
        for name in ("slabs_in_flight", "verify", "verify_per_slab"):
            if getattr(options, name) != getattr(DEFAULT_OPTIONS, name):
                out += words(f"--{name}", getattr(options, name))
    return out


def pull_words(spec: PullSpec) -> list[str]:
    box = spec.box
    out = ref_words(spec.ref) + (["--full_extent"] if box is None else
                                 [*words("--x", box.x), *words("--y", box.y), *words("--z", box.z)])
    out += words("--res", spec.res or None) + words("--iso", spec.iso) + words("--t", spec.time_range)
    out += words("--outdir", str(spec.outdir)) + words("--output", spec.output if spec.output != "tif" else None)
    out += words("--stack_filename", spec.stack_filename) + words("--z_digits", spec.z_digits)
    out += words("--compression", spec.compression) + words("--compression_level", spec.compression_level)
    out += words("--force_datatype", spec.force_datatype)
    mode = spec.force_datatype_mode
    return out + (words("--force_datatype_mode", mode) if mode != "scale" else [])


def create_words(spec: CreateSpec) -> list[str]:
    r = spec.resources
    out = [*words("--coord_frame_x_extent", r.frame.x), *words("--coord_frame_y_extent", r.frame.y),
           *words("--coord_frame_z_extent", r.frame.z), *words("--voxel_size", r.voxel_size),
           *words("--voxel_unit", r.voxel_unit), *words("--source_channel", r.source_channel)]
    if r.num_time_samples > 1:  # a 4D volume's: ndpush --create_resources makes as many as --time_range reaches
        out += words("--time_range", (0, r.num_time_samples))
    return out + words("--create_resources", True)


def job_argv(job: JobSpec, push: PushSpec | None = None) -> list[str]:
    """The ndex 1.x command of `job`; a create step is rendered around `push`, the plan's whole push."""
    if job.kind == CREATE:
        spec = CreateSpec.from_dict(dict(job.spec))
        assert push is not None, "a create step is rendered with the push it creates resources for"
        push = replace(push, time_sample=None)  # the create step covers every time sample (create_words)
        return ["ndpush", *connection(job), *push_words(push), *words("--datatype", None if push.source.datatype
                else spec.resources.datatype), *create_words(spec), *words("--log_dir", job.log_dir)]
    options = TransferOptions.from_dict(dict(job.options))
    if job.kind == "push":
        push_spec = PushSpec.from_dict(dict(job.spec))
        return ["ndpush", *connection(job), *push_words(push_spec), *option_words(options, "push"),
                *words("--log_dir", job.log_dir)]
    return ["ndpull", *words("--url", job.url), *words("--config_file", job.config_file), *pull_words(PullSpec.from_dict(dict(job.spec))), *option_words(options, "pull")]

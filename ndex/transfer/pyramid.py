"""Pull several resolution levels into one pyramid output (OME-Zarr or precomputed).

Each level is an ordinary pull (`download.pull`, the same blocks, threads, memory bound and resume)
of the level's own box (`levels.level_box`) into that level's sink of the pyramid; the levels run
one after the other, lowest first. Every level is planned before anything is fetched, so a level the
channel lacks (outside its hierarchy, never built) fails first, naming the level. The output is
published only when every level is complete; an interrupted run resumes each level from its ledger.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from ndex.client import BossClient, ChannelInfo
from ndex.config import Remote
from ndex.progress import NullProgress, Progress
from ndex.sinks.factory import open_pyramid
from ndex.transfer.download import given_or_own, pull
from ndex.transfer.levels import level_box
from ndex.transfer.options import TransferOptions
from ndex.transfer.pull_plan import PullPlan, PullSpec, make_plan
from ndex.transfer.report import RunReport

log = logging.getLogger(__name__)


def is_pyramid(spec: PullSpec) -> bool:
    """A pull of levels into a pyramid output (even of one level) writes through `pull_levels`."""
    return spec.pyramid


def level_specs(spec: PullSpec, info: ChannelInfo) -> list[PullSpec]:
    """The single-level pull of every level of `spec` (lowest first), each with its own box."""
    first, last = spec.levels  # type: ignore[misc]  # is_pyramid(spec)
    whole = replace(spec, levels=None, res=first)
    box = spec.box if spec.box is not None else info.extent_at(first, spec.iso)
    out = []
    for res in range(first, last + 1):
        info.check_res(res, built_before=True)  # a level outside the hierarchy is named as such (built: make_plan)
        out.append(replace(whole, res=res, box=level_box(info, box, first, res, spec.iso)))
    return out


def plan_levels(client: Any, spec: PullSpec, options: TransferOptions) -> list[PullPlan]:
    """Every level's plan, checked against the channel before anything is fetched."""
    info = client.channel_info(spec.ref)
    return [make_plan(client, one, options, info) for one in level_specs(spec, info)]


def pull_levels(spec: PullSpec, options: TransferOptions | None = None, *, client: BossClient | None = None,
                remote: Remote | None = None, progress: Progress | None = None,
                plans: list[PullPlan] | None = None) -> RunReport:
    """Download every level of `spec` into one pyramid; returns one report for all levels (failures listed,
    never raised). A re-run of the same spec resumes."""
    options = options or TransferOptions()
    progress = progress or NullProgress()
    with given_or_own(client, remote, "pull", options, on_retry=progress.retry) as boss:
        plans = plans or plan_levels(boss, spec, options)
        pyramid = open_pyramid(spec.output, [p.output_spec for p in plans])  # type: ignore[arg-type]  # set by PullSpec
        reports = []
        for plan, level in zip(plans, pyramid.levels):
            progress.note(f"level {plan.spec.res}: {plan.box}")
            report = pull(plan.spec, options, client=boss, progress=progress, sink=level, plan=plan)
            reports.append((plan.spec.res, report))
            if not report.ok or report.ended_by is not None:
                break  # a later level would only fail the same way; a re-run resumes here
    total = merged(reports, sum(p.nblocks for p in plans))
    if total.ok and total.ended_by is None and len(reports) == len(plans):
        total.files = pyramid.finish()
    return total


def merged(reports: list[tuple[int, RunReport]], blocks_total: int) -> RunReport:
    """One report of the levels' (level, report) pairs: counts and times added, failures (named by level)
    and notes joined."""
    total = RunReport("pull", blocks_total=blocks_total)
    for res, r in reports:
        for name in ("blocks_done", "blocks_skipped", "nbytes", "seconds", "retries", "requests", "throttled"):
            setattr(total, name, getattr(total, name) + getattr(r, name))
        total.failures.update({f"{block} at resolution {res}": error for block, error in r.failures.items()})
        total.notes.extend(r.notes)
        total.ended_by = total.ended_by or r.ended_by
    return total

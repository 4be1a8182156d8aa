#!/usr/bin/env python3
"""The pure core of the training supervisor (stdlib only, no I/O): Faceswap's log lines, the
stop criteria, the multi-GPU decision, what a model is made from. fsoci_train.py, the process
shell beside it, reads files and signals processes; everything it decides comes from here, so
each rule is unit-tested without a process (tests/unit/test_train_supervisor.py)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_NUM = r"([-+0-9.eE]+|nan|inf)"
LOSS_RE = re.compile(rf"\[(\d\d):(\d\d):(\d\d)\] \[#(\d+)\] Loss A: {_NUM}, Loss B: {_NUM}")
SAVE_RE = re.compile(r"Average total loss since last save: ([-+0-9.eE]+)")


def use_distributed(mode: object, gpu_count: int, exclude: list[int]) -> bool:
    """Whether Faceswap trains with -d/--distributed (lib/cli/args_train.py at the pinned
    commit: nvidia/rocm backends only): ``auto`` when more than one GPU is left after the
    excluded ones, else as the spec says (true/false)."""
    left = len(set(range(gpu_count)) - {int(i) for i in exclude})
    if isinstance(mode, str) and mode.lower() in ("true", "false"):
        mode = mode.lower() == "true"
    if mode == "auto":
        return left > 1
    return bool(mode) and left > 0


def parse_progress(text: str) -> dict[str, Any]:
    """Iteration, losses and it/s from the tail of Faceswap's output (its last loss line, the
    rate over the latest session's lines)."""
    matches = list(LOSS_RE.finditer(text))
    info: dict[str, Any] = {"iteration": None, "loss_a": None, "loss_b": None, "it_per_s": None}
    if not matches:
        return info
    last = matches[-1]
    info["iteration"] = int(last.group(4))
    info["loss_a"] = float(last.group(5))
    info["loss_b"] = float(last.group(6))
    # Rate over the lines of the latest session in the tail (timestamps have 1 s resolution).
    session = [m for m in matches if text.rfind("[fsoci]", 0, m.start()) == text.rfind("[fsoci]")]
    first = session[0] if session else last

    def secs(m: re.Match[str]) -> int:
        return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + int(m.group(3))

    elapsed = (secs(last) - secs(first)) % 86400
    done = int(last.group(4)) - int(first.group(4))
    if elapsed > 0 and done > 0:
        info["it_per_s"] = round(done / elapsed, 4)
    return info


def save_averages(text: str) -> list[float]:
    """The "Average total loss since last save" of every save in ``text``, in order."""
    return [float(m.group(1)) for m in SAVE_RE.finditer(text)]


def plateau_reached(averages: list[float], saves: int) -> bool:
    """True when the last ``saves`` save averages brought no new lowest average loss."""
    if saves <= 0 or len(averages) <= saves:
        return False
    best_before = min(averages[:-saves])
    return min(averages[-saves:]) >= best_before


def stop_criterion(
    cfg: dict[str, Any],
    state_iters: int,
    started: float | None,
    now: float,
    averages: Callable[[], list[float]],
) -> str | None:
    """The stop criterion met, if any: ``iterations`` (the cumulative count reached the
    target), ``hours`` (wall-clock since the job's first start), ``plateau`` (the last N save
    averages brought no new lowest loss; ``averages`` is read only when that criterion is on)."""
    target = int(cfg.get("iterations") or 0)
    hours = float(cfg.get("hours") or 0)
    plateau = int(cfg.get("plateau_saves") or 0)
    if target > 0 and state_iters >= target:
        return "iterations"
    if hours > 0 and started is not None and now - float(started) >= hours * 3600:
        return "hours"
    if plateau > 0 and plateau_reached(averages(), plateau):
        return "plateau"
    return None


def model_differences(have: dict[str, Any] | None, want: dict[str, Any]) -> list[str]:
    """The parts of ``made_from`` in which the model on disk differs from what is wanted."""
    if have is None:
        return ["unknown (the model records nothing)"]
    old, new = have.get("made_from") or {}, want.get("made_from") or {}
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k)) or ["key"]

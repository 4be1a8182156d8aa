"""The runner's process control without Ansible: stop_tree escalates SIGINT -> SIGTERM ->
SIGKILL over the whole tree of a run (found by its token, also a process that left the
session), waits until it is gone, and skips the grace periods once hurried; SIGINT, SIGTERM and
SIGHUP all count as a cancel."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from faceswap_oci import runner

IGNORE = (
    "import signal, sys, time\n"
    "for name in sys.argv[1:]:\n"
    "    signal.signal(getattr(signal, name), signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(120)\n"
)


def spawn(token: str, *ignored: str, new_session: bool = False) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", IGNORE, *ignored],
        env={**os.environ, runner.RUN_TOKEN: token},
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=new_session,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return proc


# Shorter than the runner's, long enough for a Python child to run its KeyboardInterrupt exit on
# a loaded CI machine (at 1 s, four pytest workers on two cores saw SIGINT escalated to SIGTERM).
GRACE = 3.0


@pytest.fixture(autouse=True)
def short_graces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        runner, "GRACE_S", {signal.SIGINT: GRACE, signal.SIGTERM: GRACE, signal.SIGKILL: 5.0}
    )


@pytest.mark.parametrize(
    ("ignored", "ended_by"),
    [((), signal.SIGINT), (("SIGINT",), signal.SIGTERM), (("SIGINT", "SIGTERM"), signal.SIGKILL)],
    ids=["SIGINT", "SIGTERM", "SIGKILL"],
)
def test_stop_tree_escalates_until_the_tree_is_gone(
    ignored: tuple[str, ...], ended_by: signal.Signals
) -> None:
    token = uuid.uuid4().hex
    procs = [spawn(token, *ignored), spawn(token, *ignored, new_session=True)]
    assert runner.tree_pids(token) == {p.pid for p in procs}
    started = time.monotonic()
    assert runner.stop_tree(token) is True
    took = time.monotonic() - started
    assert runner.tree_pids(token) == set()
    for proc in procs:
        assert proc.wait(timeout=5) == -ended_by
    steps = [signal.SIGINT, signal.SIGTERM, signal.SIGKILL].index(ended_by)
    assert steps * GRACE <= took < (steps + 1) * GRACE, took  # each ignored signal costs its grace


def test_hurry_skips_the_grace_periods() -> None:
    token = uuid.uuid4().hex
    proc = spawn(token, "SIGINT", "SIGTERM")
    started = time.monotonic()
    assert runner.stop_tree(token, hurry=lambda: True)
    assert proc.wait(timeout=5) == -signal.SIGKILL
    assert time.monotonic() - started < 1


def test_other_processes_are_left_alone() -> None:
    mine, other = uuid.uuid4().hex, uuid.uuid4().hex
    keep = spawn(other)
    try:
        spawn(mine)
        assert runner.stop_tree(mine)
        assert keep.poll() is None
    finally:
        keep.kill()
        keep.wait()


@pytest.mark.parametrize("sig", runner.CANCEL_SIGNALS, ids=lambda s: s.name)
def test_each_cancel_signal_sets_the_flag(sig: signal.Signals) -> None:
    cancel = runner._Cancel()
    with runner._cancel_on_signals(cancel):
        os.kill(os.getpid(), sig)
        deadline = time.monotonic() + 5
        while not cancel.flag.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert (cancel.count, cancel.signal, cancel.hurry) == (1, sig.name, False)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        assert cancel.hurry
    assert signal.getsignal(sig) is not None

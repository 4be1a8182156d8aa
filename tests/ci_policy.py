"""pytest plugin: on CI (``CI=true``) a skipped test fails, unless its reason is allowed.

The allowed reasons are :data:`SKIP_ALLOWED` (a skip reason that starts with one of them); the
run prints them, with every allowed skip it saw, in a section of its summary.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

SKIP_ALLOWED: dict[str, str] = {
    "needs an NVIDIA GPU": "GPU paths (nvidia-smi on a real GPU, CUDA training) need a GPU "
    "machine; CI has none",
}
_allowed_skips: list[tuple[str, str]] = []


def _skip_reason(report: pytest.TestReport) -> str:
    reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else ""
    return reason.removeprefix("Skipped: ")


def _on_ci() -> bool:
    return os.environ.get("CI", "") not in ("", "0", "false", "no")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.skipped and not hasattr(report, "wasxfail") and _on_ci():
        reason = _skip_reason(report)
        if not any(reason.startswith(allowed) for allowed in SKIP_ALLOWED):
            report.outcome = "failed"
            report.longrepr = (
                f"skipped on CI ({reason!r}): a skip is a failure here; the allowed reasons "
                f"are {sorted(SKIP_ALLOWED)} (tests/ci_policy.py)"
            )
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # Here, not in makereport: the report as the session sees it, where it prints (also under
    # pytest-xdist, in the controller).
    if report.skipped and not hasattr(report, "wasxfail") and _on_ci():
        _allowed_skips.append((report.nodeid, _skip_reason(report)))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _on_ci():
        return
    terminalreporter.section("skips allowed on CI")
    for reason, why in SKIP_ALLOWED.items():
        terminalreporter.write_line(f"allowed: {reason!r}: {why}")
    for nodeid, reason in _allowed_skips:
        terminalreporter.write_line(f"skipped: {nodeid}: {reason}")
    terminalreporter.write_line(f"{len(_allowed_skips)} allowed skip(s)")

"""Loads the local OCI API fixtures for the OCI tests, and counts leaks per scenario."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ociapi.fixtures import oci_test_config, ociapi

__all__ = ["oci_test_config", "ociapi"]

# Test modules whose every test is a provision/fault/teardown scenario that must end with
# nothing tagged left alive on the local API.
SCENARIO_MODULES = {
    "test_playbooks",
    "test_interrupt",
    "test_wrapper",
    "test_cancel",
}
_scenarios: list[tuple[str, int]] = []


@pytest.fixture(autouse=True)
def _count_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    module = request.node.module.__name__.rsplit(".", 1)[-1]
    if module not in SCENARIO_MODULES or "ociapi" not in request.fixturenames:
        yield
        return
    api = request.getfixturevalue("ociapi")
    yield
    _scenarios.append((request.node.nodeid, len(api.state.live_tagged())))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _scenarios:
        return
    leaked = [(name, n) for name, n in _scenarios if n]
    terminalreporter.write_line(
        f"OCI scenarios: {len(_scenarios)}, leaked resources: {sum(n for _, n in leaked)}"
        + "".join(f"\n  {name}: {n}" for name, n in leaked)
    )

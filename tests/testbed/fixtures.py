"""pytest plugin: booted test hosts as session fixtures.

``testbed_host`` is one host for the whole session; ``testbed_hosts(n)`` makes *n* more.
Hosts are removed at session end, also after a failure, Ctrl-C (pytest unwinds its fixtures)
or SIGTERM (turned into a normal exit), and by an ``atexit`` hook as a last resort; hosts of a
session killed outright are removed by the next ``up`` on the machine.

Where the machine cannot run hosts the fixtures skip with the reason; with
``FSOCI_REQUIRE_TESTBED=1`` (CI) they fail instead, so a CI machine that should run the
test-bed tests cannot pass by skipping them.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

import pytest

from tests.testbed.core import Host, Testbed, TestbedError, TestbedUnsupported

REQUIRE_ENV = "FSOCI_REQUIRE_TESTBED"


def testbed_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0", "false", "no")


def unavailable(reason: str) -> None:
    """Skip the test (or fail it when the test bed is required) because hosts can't run here."""
    if testbed_required():
        pytest.fail(f"{REQUIRE_ENV}=1 but the test bed cannot run: {reason}", pytrace=False)
    pytest.skip(f"test bed unavailable: {reason}")


class SessionTestbed:
    """The hosts one pytest session made, removed together at the end."""

    def __init__(self, testbed: Testbed) -> None:
        self.testbed = testbed
        self.prefix = f"pt{os.getpid()}"
        self._counter = itertools.count(1)
        self._mine: list[str] = []
        self._lock = threading.Lock()

    def new_name(self) -> str:
        return f"{self.prefix}-{next(self._counter)}"

    def up(self, n: int = 1, *, layer: str | None = None) -> list[Host]:
        names = [self.new_name() for _ in range(n)]
        with self._lock:
            self._mine.extend(names)
        return self.testbed.up(names, session_pid=os.getpid(), layer=layer)

    def capture(self, host: Host, layer: str) -> None:
        """Keep *host*'s changes as *layer* (the host is powered off and removed)."""
        self.testbed.capture(host.name, layer)
        with self._lock:
            self._mine = [n for n in self._mine if n != host.name]

    def down(self, hosts: list[Host] | list[str]) -> None:
        names = [h if isinstance(h, str) else h.name for h in hosts]
        self.testbed.down(names)
        with self._lock:
            self._mine = [n for n in self._mine if n not in names]

    def close(self) -> None:
        with self._lock:
            names, self._mine = self._mine, []
        if names:
            with contextlib.suppress(TestbedError):
                self.testbed.down(names)


def _sigterm_to_exit(signum: int, frame: FrameType | None) -> None:
    del frame
    raise SystemExit(128 + signum)


@pytest.fixture(scope="session")
def testbed() -> Iterator[SessionTestbed]:
    """The session's test bed; skips (fails under FSOCI_REQUIRE_TESTBED=1) where it can't run."""
    bed = Testbed()
    try:
        bed.require(build=not bed.rootfs_tarball().exists())
    except TestbedUnsupported as exc:
        unavailable(str(exc))
    session = SessionTestbed(bed)
    atexit.register(session.close)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _sigterm_to_exit)
    try:
        yield session
    finally:
        session.close()
        atexit.unregister(session.close)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session")
def testbed_host(testbed: SessionTestbed) -> Host:
    """One booted Debian host for the session (root over SSH with the test key)."""
    return testbed.up(1)[0]


@pytest.fixture(scope="session")
def testbed_hosts(testbed: SessionTestbed) -> Callable[[int], list[Host]]:
    """Factory: ``testbed_hosts(3)`` boots three fresh hosts, removed at session end."""
    return testbed.up

"""Which processes of a run are alive: by a text (the test's own state folder) in their command
line or environment, as every playbook, module and ssh process of a run has it in one."""

from __future__ import annotations

import os
from pathlib import Path


def alive(pids: dict[int, str]) -> list[str]:
    """Those of ``pids`` still running (not zombies) with the same command line."""
    found = []
    for pid, cmdline in pids.items():
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            now = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if state != "Z" and now.decode(errors="replace")[:200] == cmdline:
            found.append(cmdline)
    return found


def process_tree(text: str, but: int) -> dict[int, str]:
    needle = text.encode()
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in (os.getpid(), but):
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if needle in cmdline or needle in environ:
            found[int(entry)] = cmdline.replace(b"\0", b" ").decode(errors="replace")[:200]
    return found


def processes_mentioning(text: str, but: int = 0) -> list[str]:
    """Command lines of live processes whose command line or environment holds ``text`` (the
    test's own state folder: every playbook, module and ssh of the run has it in one), except
    this one and ``but``."""
    return alive(process_tree(text, but))

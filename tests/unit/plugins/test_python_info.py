"""The python_info module's choice, with real interpreters: the machine image's pyenv builds
(3.9 to 3.13, /root/.pyenv/versions, see /work/.library/env/machines/python.md) and this
machine's own /usr/bin/python3.11, looked up on a PATH the test makes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.faceswap_oci.core.plugins.modules import python_info as mod

PYENV = Path("/root/.pyenv/versions")
SUPPORTED = ["3.11", "3.12", "3.13"]
MODULES = ["venv", "ensurepip", "tkinter"]


def _pyenv(minor: str) -> Path:
    found = sorted(PYENV.glob(f"{minor}.*/bin/python{minor}"))
    if not found:
        # The machine image carries these builds (python.md); a machine without them cannot
        # show the choice among real interpreters, and that is a failure, not a skip.
        raise AssertionError(f"no pyenv build of Python {minor} under {PYENV}")
    return found[-1]


def _run(argv: list[str]) -> tuple[int, str, str]:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    except OSError as exc:
        return 126, "", str(exc)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture()
def bindir(tmp_path: Path) -> Path:
    d = tmp_path / "bin"
    d.mkdir()
    return d


def _which(bindir: Path):  # type: ignore[no-untyped-def]
    return lambda name: shutil.which(name, path=str(bindir))


def _link(bindir: Path, name: str, target: Path) -> None:
    (bindir / name).symlink_to(target)


def test_newest_supported_wins_over_an_old_python3(bindir: Path) -> None:
    # Oracle Linux 9's shape: python3 is 3.9, python3.11 and python3.12 beside it.
    _link(bindir, "python3", _pyenv("3.9"))
    _link(bindir, "python3.11", _pyenv("3.11"))
    _link(bindir, "python3.12", _pyenv("3.12"))
    got = mod.find_python(
        ["python3.13", "python3.12", "python3.11"], [], SUPPORTED, MODULES, _which(bindir), _run
    )
    assert got["python"] == str(bindir / "python3.12")
    assert got["python_version"] == "3.12"
    assert [(i["path"], i["version"], i["problem"]) for i in got["interpreters"]] == [
        (str(bindir / "python3.12"), "3.12", None),
        (str(bindir / "python3.11"), "3.11", None),
    ]


def test_an_explicit_old_interpreter_is_named_with_its_version(bindir: Path) -> None:
    _link(bindir, "python3", _pyenv("3.9"))
    got = mod.find_python([], [str(bindir / "python3")], SUPPORTED, MODULES, _which(bindir), _run)
    assert got["python"] is None
    assert got["interpreters"] == [
        {
            "path": str(bindir / "python3"),
            "version": "3.9",
            "missing": [],
            "problem": "is Python 3.9, not 3.11, 3.12, 3.13",
        }
    ]


def test_a_newer_python_without_tkinter_loses_to_an_older_complete_one(bindir: Path) -> None:
    # python3.13 "without tkinter": asked for a module no interpreter has, only for 3.13.
    _link(bindir, "python3.13", _pyenv("3.13"))
    _link(bindir, "python3.11", _pyenv("3.11"))

    def run(argv: list[str]) -> tuple[int, str, str]:
        if argv[0].endswith("python3.13"):
            argv = [*argv[:3], '["venv", "ensurepip", "tkinter", "fsoci_no_such_module"]']
        rc, out, err = _run(argv)
        return rc, out.replace("fsoci_no_such_module", "tkinter"), err

    got = mod.find_python(["python3.13", "python3.11"], [], SUPPORTED, MODULES, _which(bindir), run)
    assert got["python"] == str(bindir / "python3.11")
    assert got["interpreters"][0]["problem"] == "cannot import tkinter"


def test_same_interpreter_under_two_names_is_checked_once(bindir: Path) -> None:
    _link(bindir, "python3.11", Path(sys.base_prefix) / "bin" / "python3.11")
    _link(bindir, "python3", bindir / "python3.11")
    got = mod.find_python(["python3.11", "python3"], [], SUPPORTED, MODULES, _which(bindir), _run)
    assert [i["path"] for i in got["interpreters"]] == [str(bindir / "python3.11")]


@pytest.mark.parametrize(
    ("script", "problem"),
    [
        (
            "#!/bin/sh\necho 'error while loading shared libraries' >&2\nexit 127\n",
            "does not run (error while loading shared libraries)",
        ),
        ("#!/bin/sh\necho not json\n", "does not run (not json)"),
    ],
    ids=["broken", "garbage"],
)
def test_a_candidate_that_does_not_run(bindir: Path, script: str, problem: str) -> None:
    broken = bindir / "python3.12"
    broken.write_text(script)
    broken.chmod(0o755)
    _link(bindir, "python3.11", _pyenv("3.11"))
    got = mod.find_python(
        ["python3.12", "python3.11"], [], SUPPORTED, MODULES, _which(bindir), _run
    )
    assert got["interpreters"][0] == {
        "path": str(broken),
        "version": None,
        "missing": [],
        "problem": problem,
    }
    assert got["python"] == str(bindir / "python3.11")


def test_nothing_found(bindir: Path) -> None:
    got: dict[str, Any] = mod.find_python(
        ["python3.13"], [], SUPPORTED, MODULES, _which(bindir), _run
    )
    assert got == {"python": None, "python_version": None, "interpreters": []}
    assert not os.listdir(bindir)

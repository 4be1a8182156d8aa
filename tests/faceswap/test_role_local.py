"""The faceswap role on the `local` target: no become, the invoking user, the wheel set in place.

The session's install (``local_faceswap``, :mod:`tests.faceswap.local`: the real Faceswap and its
CPU requirements, about 5.6 GB, under a scratch root in /var/tmp) is checked here: what the first
run did, that an unchanged re-run and check mode change nothing, that a changed ini is predicted,
and that an unknown ini option is rejected against Faceswap's own defaults. The pipeline tests
then run their phases on the same install.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from faceswap_oci import cache
from tests.faceswap.local import LocalInstall, run_local_role

pytestmark = [pytest.mark.faceswap, pytest.mark.slow]


def test_local_install_then_unchanged_rerun(local_faceswap: LocalInstall, tmp_path: Path) -> None:
    root, commit, wheels = local_faceswap.root, local_faceswap.commit, local_faceswap.wheels
    first = local_faceswap.first
    assert first.changed.get("local", 0) > 0
    # On `local` the wheel set is used in place, not copied.
    assert not (root / "wheels").exists()
    smoke = json.loads((root / ".fsoci-smoke.json").read_text())
    assert smoke["key"]["commit"] == commit
    assert smoke["result"]["torch"].startswith("2.12.1")
    assert smoke["result"]["cuda_available"] is False
    assert "lowmem = True" in (root / "jobs/demo/config/train.ini").read_text()

    again = run_local_role(tmp_path / "again", root, commit, wheels)
    assert again.rc == 0, again.output[-3000:]
    assert again.changed.get("local", 0) == 0

    checked = run_local_role(tmp_path / "check", root, commit, wheels, check=True)
    assert checked.rc == 0, checked.output[-3000:]
    assert checked.changed.get("local", 0) == 0

    other = {"train": {"model.original": {"lowmem": False}}}
    predicted = run_local_role(
        tmp_path / "predict", root, commit, wheels, check=True, faceswap_ini=other
    )
    assert predicted.rc == 0, predicted.output[-3000:]
    assert predicted.changed.get("local", 0) == 1
    assert "lowmem = True" in (root / "jobs/demo/config/train.ini").read_text()


def test_clone_mode_from_a_git_url(local_faceswap: LocalInstall, tmp_path: Path) -> None:
    """`clone` mode: the host clones the URL (here the controller's mirror, as a file URL).

    Only the way the source arrives differs from the shared install, so the new root starts
    with that install's venv (hard links, requirements marker included): the role must then
    clone, keep the venv and change nothing on a re-run, without a second pip install of the
    same wheels (local_faceswap tests that path).
    """
    commit, wheels = local_faceswap.commit, local_faceswap.wheels
    root = local_faceswap.root.with_name(local_faceswap.root.name + "-clone")
    try:
        root.mkdir()
        subprocess.run(
            ["cp", "-al", str(local_faceswap.root / "venv"), str(root / "venv")], check=True
        )
        more = {
            "faceswap_source_mode": "clone",
            "faceswap_git_url": cache.source_dir().as_uri(),
            "faceswap_ini": {},
        }
        result = run_local_role(tmp_path / "clone", root, commit, wheels, **more)
        assert result.rc == 0, result.output[-3000:]
        head = subprocess.run(
            ["git", "-C", str(root / "faceswap"), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert head == commit
        again = run_local_role(tmp_path / "again", root, commit, wheels, **more)
        assert again.rc == 0, again.output[-3000:]
        assert again.changed.get("local", 0) == 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_unknown_ini_option_is_rejected_against_faceswap_defaults(
    local_faceswap: LocalInstall, tmp_path: Path
) -> None:
    settings = {"train": {"model.original": {"lowmemory": True}}}
    result = run_local_role(
        tmp_path / "ini",
        local_faceswap.root,
        local_faceswap.commit,
        local_faceswap.wheels,
        faceswap_ini=settings,
    )
    assert result.rc != 0
    assert result.failures == [
        "faceswap_ini: train.ini [model.original] has no option 'lowmemory'; valid options: lowmem"
    ]

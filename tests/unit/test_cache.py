"""Unit tests for the controller-side caches (source mirror, wheel sets).

They build tiny synthetic git repositories shaped like Faceswap's ``requirements/`` folder and
use a fake ``pip`` so that nothing touches the network.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from faceswap_oci import cache
from faceswap_oci.content import module_util

ROOT = Path(__file__).resolve().parents[2]

BASE = "numpy>=2.4.0\nkeras>=3.14.1,<3.15.0  # inline comment\n# a comment\n\n"
NVIDIA13 = (
    "# Cuda compatibility 7.5-\n-r _requirements_base.txt\nnvidia-ml-py>=12.535,<300\n"
    "--extra-index-url https://download.pytorch.org/whl/cu130\ntorch>=2.9.0,<2.13.0\n"
)


def git(*args: str, cwd: Path) -> str:
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.invalid",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.invalid",
    )
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    """A working-tree repo with a Faceswap-like ``requirements/`` folder and a tag."""
    repo = tmp_path / "upstream"
    (repo / "requirements").mkdir(parents=True)
    git("init", "--quiet", "--initial-branch=master", cwd=repo)
    (repo / "requirements" / "_requirements_base.txt").write_text(BASE)
    (repo / "requirements" / "requirements_nvidia_13.txt").write_text(NVIDIA13)
    (repo / "requirements" / "requirements_nvidia_12.txt").write_text(
        NVIDIA13.replace("cu130", "cu126")
    )
    git("add", ".", cwd=repo)
    git("commit", "--quiet", "-m", "one", cwd=repo)
    git("tag", "v3.0.0", cwd=repo)
    return repo


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def test_cache_root_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FSOCI_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_root() == tmp_path / "home" / ".cache" / "faceswap-oci"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_root() == tmp_path / "xdg" / "faceswap-oci"
    monkeypatch.setenv("FSOCI_CACHE_DIR", str(tmp_path / "explicit"))
    assert cache.cache_root() == tmp_path / "explicit"
    assert cache.source_dir() == tmp_path / "explicit" / "faceswap.git"
    assert cache.wheels_dir() == tmp_path / "explicit" / "wheels"


def test_add_source_and_resolve(upstream: Path, root: Path) -> None:
    added = cache.add_source(str(upstream), root=root)
    head = git("rev-parse", "HEAD", cwd=upstream)
    assert added.path == root / "faceswap.git"
    assert not added.shallow
    assert set(added.refs) == {"refs/heads/master", "refs/tags/v3.0.0"}
    assert cache.resolve_ref("v3.0.0", root=root) == head
    assert cache.resolve_ref("master", root=root) == head
    assert cache.resolve_ref(head[:10], root=root) == head


def test_add_source_updates_existing_mirror(upstream: Path, root: Path) -> None:
    cache.add_source(str(upstream), root=root)
    (upstream / "new.txt").write_text("x")
    git("add", "new.txt", cwd=upstream)
    git("commit", "--quiet", "-m", "two", cwd=upstream)
    cache.add_source(str(upstream), root=root)
    assert cache.resolve_ref("master", root=root) == git("rev-parse", "HEAD", cwd=upstream)


def test_add_source_with_missing_objects_falls_back_to_tips(upstream: Path, root: Path) -> None:
    big = upstream / "model.bin"
    big.write_bytes(b"weights")
    git("add", "model.bin", cwd=upstream)
    git("commit", "--quiet", "-m", "add weights", cwd=upstream)
    blob = git("rev-parse", "HEAD:model.bin", cwd=upstream)
    git("tag", "old", cwd=upstream)
    git("rm", "--quiet", "model.bin", cwd=upstream)
    git("commit", "--quiet", "-m", "drop weights", cwd=upstream)
    (upstream / ".git" / "objects" / blob[:2] / blob[2:]).unlink()

    added = cache.add_source(str(upstream), root=root)

    assert added.shallow
    assert "refs/heads/master" in added.refs
    assert added.skipped == ("refs/tags/old",)
    assert cache.resolve_ref("master", root=root) == git("rev-parse", "HEAD", cwd=upstream)


def test_add_source_rejects_garbage(root: Path) -> None:
    with pytest.raises(cache.CacheError, match="neither an existing path nor a URL"):
        cache.add_source("no-such-dir", root=root)


def test_resolve_unknown_ref_message(upstream: Path, root: Path) -> None:
    cache.add_source(str(upstream), root=root)
    repo = root / "faceswap.git"
    with pytest.raises(cache.CacheError) as err:
        cache.resolve_ref("xyz", root=root)
    assert str(err.value) == (
        f"faceswap.ref 'xyz' not found in the Faceswap source cache at {repo}; run "
        "`faceswap-oci source add <path-or-url>` or pick a commit/tag from "
        f"`git -C {repo} tag`"
    )


def test_resolve_on_empty_cache(root: Path) -> None:
    with pytest.raises(cache.CacheError, match="not found in the Faceswap source cache"):
        cache.resolve_ref("master", root=root)


def test_ensure_source_unreachable(root: Path, tmp_path: Path) -> None:
    url = (tmp_path / "nowhere.git").as_uri()
    with pytest.raises(cache.CacheError) as err:
        cache.ensure_source(url, root=root, timeout=10)
    message = str(err.value)
    assert f"the Faceswap source cache at {root / 'faceswap.git'} is empty" in message
    assert url in message
    assert "faceswap-oci source add <path-or-url>" in message


def test_ensure_source_fills_once(upstream: Path, root: Path) -> None:
    url = upstream.as_uri()
    assert cache.ensure_source(url, root=root) == root / "faceswap.git"
    # Populated: the URL is no longer consulted.
    assert cache.ensure_source("file:///nonexistent.git", root=root) == root / "faceswap.git"


def test_requirements_for_backends(upstream: Path, root: Path) -> None:
    cache.add_source(str(upstream), root=root)
    sha = cache.resolve_ref("master", root=root)
    cpu = cache.requirements_for(sha, "cpu", root=root)
    assert cpu.lines == ("numpy>=2.4.0", "keras>=3.14.1,<3.15.0", "torch==2.12.1")
    assert cpu.index_urls == ()
    assert cpu.text == "numpy>=2.4.0\nkeras>=3.14.1,<3.15.0\ntorch==2.12.1\n"
    gpu = cache.requirements_for(sha, "nvidia13", root=root)
    assert gpu.lines == (
        "numpy>=2.4.0",
        "keras>=3.14.1,<3.15.0",
        "nvidia-ml-py>=12.535,<300",
        "torch>=2.9.0,<2.13.0",
    )
    assert gpu.index_urls == ("https://download.pytorch.org/whl/cu130",)
    assert cache.requirements_for(sha, "nvidia12", root=root).index_urls == (
        "https://download.pytorch.org/whl/cu126",
    )
    with pytest.raises(cache.CacheError, match="backend 'rocm' unknown"):
        cache.requirements_for(sha, "rocm", root=root)


def test_requirements_for_pre_faceswap3_commit(upstream: Path, root: Path) -> None:
    (upstream / "requirements" / "_requirements_base.txt").unlink()
    git("commit", "--quiet", "-am", "old layout", cwd=upstream)
    cache.add_source(str(upstream), root=root)
    sha = cache.resolve_ref("master", root=root)
    with pytest.raises(cache.CacheError, match=r"_requirements_base\.txt does not exist"):
        cache.requirements_for(sha, "cpu", root=root)


def test_wheel_key_depends_on_every_input() -> None:
    req = cache.Requirements("cpu", "a" * 40, ("numpy",), ())
    key = cache.wheel_key(req, "3.11", "manylinux_2_28_x86_64")
    assert key == cache.wheel_key(req, "3.11", "manylinux_2_28_x86_64")
    assert len(key) == 16
    others = {
        cache.wheel_key(req, "3.12", "manylinux_2_28_x86_64"),
        cache.wheel_key(req, "3.11", "manylinux_2_28_aarch64"),
        cache.wheel_key(cache.Requirements("nvidia13", "a" * 40, ("numpy",), ()), "3.11", "x"),
        cache.wheel_key(cache.Requirements("cpu", "a" * 40, ("numpy>1",), ()), "3.11", "x"),
    }
    assert key not in others
    assert len(others) == 4


def test_platform_tags() -> None:
    tags = cache.platform_tags("manylinux_2_28_x86_64")
    assert tags[0] == "manylinux_2_28_x86_64"
    assert tags[-1] == "manylinux1_x86_64"
    assert "manylinux2014_x86_64" in tags
    assert "manylinux_2_17_x86_64" in tags
    assert cache.platform_tags("macosx_14_0_arm64") == ["macosx_14_0_arm64"]


FAKE_PIP = """
import sys, pathlib
args = sys.argv[1:]
dest = pathlib.Path(args[args.index("--dest") + 1])
req = pathlib.Path(args[args.index("-r") + 1]).read_text()
print("args", args)
if "fail" in req:
    print("ERROR: No matching distribution found for fail")
    sys.exit(1)
(dest / "numpy-2.4.6-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"x" * 100)
"""


def test_ensure_wheels_downloads_once(upstream: Path, root: Path, tmp_path: Path) -> None:
    cache.add_source(str(upstream), root=root)
    sha = cache.resolve_ref("master", root=root)
    fake = tmp_path / "pip.py"
    fake.write_text(FAKE_PIP)
    pip = (sys.executable, str(fake))

    first = cache.ensure_wheels(
        sha, "nvidia13", "3.12", "manylinux_2_28_x86_64", root=root, pip=pip
    )

    req = cache.requirements_for(sha, "nvidia13", root=root)
    assert first.key == cache.wheel_key(req, "3.12", "manylinux_2_28_x86_64")
    assert first.path == root / "wheels" / first.key
    assert not first.reused
    assert (first.files, first.bytes) == (1, 100)
    assert first.requirements_file.read_text() == req.text
    log = (first.path / "pip-download.log").read_text()
    for expected in (
        "--only-binary=:all:",
        "--platform=manylinux2014_x86_64",
        "'--abi', 'cp312'",
        "'--python-version', '3.12'",
        "'--extra-index-url', 'https://download.pytorch.org/whl/cu130'",
    ):
        assert expected in log
    info = json.loads((first.path / "wheelset.json").read_text())
    assert info["commit"] == sha
    assert info["backend"] == "nvidia13"

    again = cache.ensure_wheels(sha, "nvidia13", "3.12", root=root, pip=("false",))
    assert again.reused
    assert again.key == first.key


def test_ensure_wheels_started_together_downloads_once(
    upstream: Path, root: Path, tmp_path: Path
) -> None:
    """Two jobs (or test sessions) asking for the same wheel set at once: one download."""
    cache.add_source(str(upstream), root=root)
    sha = cache.resolve_ref("master", root=root)
    calls = tmp_path / "calls"
    fake = tmp_path / "pip.py"
    fake.write_text(
        f"import time, pathlib\nwith open({str(calls)!r}, 'a') as f: f.write('x')\n"
        "time.sleep(1)\n" + FAKE_PIP
    )
    pip = (sys.executable, str(fake))
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        sets = list(
            pool.map(lambda _: cache.ensure_wheels(sha, "cpu", root=root, pip=pip), range(2))
        )
    assert calls.read_text() == "x"
    assert sorted(w.reused for w in sets) == [False, True]
    assert sets[0].path == sets[1].path


def test_ensure_wheels_failure_names_log(upstream: Path, root: Path, tmp_path: Path) -> None:
    (upstream / "requirements" / "_requirements_base.txt").write_text("fail\n")
    git("commit", "--quiet", "-am", "unsatisfiable", cwd=upstream)
    cache.add_source(str(upstream), root=root)
    sha = cache.resolve_ref("master", root=root)
    fake = tmp_path / "pip.py"
    fake.write_text(FAKE_PIP)
    with pytest.raises(cache.CacheError) as err:
        cache.ensure_wheels(sha, "cpu", root=root, pip=(sys.executable, str(fake)))
    message = str(err.value)
    assert "pip download of the cpu requirements" in message
    assert "failed with exit code 1" in message
    assert "pip-download.log" in message
    assert "No matching distribution found for fail" in message
    assert not any((root / "wheels").glob("[!.]*"))


def test_role_backend_table_matches_cache() -> None:
    """The role installs from the index with the same files and torch pin as the cache."""
    role_vars = yaml.safe_load((ROOT / "roles/faceswap/vars/main.yml").read_text())
    table = role_vars["_faceswap_backends"]
    assert set(table) == set(cache.BACKENDS)
    gpu_table = module_util("gpu_table").BACKENDS
    for name, spec in cache.BACKENDS.items():
        assert tuple(table[name]["requirements"]) == spec.files
        assert tuple(table[name]["extra"]) == spec.extra
        assert table[name]["faceswap"] == gpu_table[name].faceswap
        assert table[name]["gpu"] is (gpu_table[name].cuda is not None)


def test_state_and_data_folders_follow_the_platform(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from faceswap_oci import state

    for name in ("XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "FSOCI_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert state.default_state_root() == tmp_path / "home/.local/state/faceswap-oci/jobs"
    assert state.default_data_dir() == tmp_path / "home/.local/share/faceswap-oci"
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "st"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "da"))
    monkeypatch.setenv("FSOCI_CACHE_DIR", str(tmp_path / "ca"))
    assert state.default_state_root() == tmp_path / "st/faceswap-oci/jobs"
    assert state.default_data_dir() == tmp_path / "da/faceswap-oci"
    assert state.default_cache_dir() == cache.cache_root() == tmp_path / "ca"

"""Controller-side caches: the Faceswap source mirror and the pip wheel sets.

Layout under the cache root (``$FSOCI_CACHE_DIR``, else ``$XDG_CACHE_HOME/faceswap-oci``,
else ``~/.cache/faceswap-oci``)::

    faceswap.git/            bare git mirror of deepfakes/faceswap (all branches and tags)
    wheels/<key>/            one wheel set: *.whl, requirements.txt, wheelset.json
    weights/                 optional .fs_cache files (filled by the user, read by the role)

API (everything takes an optional ``root``; ``None`` means :func:`cache_root`):

- :func:`cache_root` -> ``Path``: the cache root.
- :func:`add_source` ``(path_or_url)`` -> :class:`SourceAdded`: fetch every branch and tag of a
  local clone, a bare repo or a URL into ``faceswap.git`` (created on first use); backs
  ``faceswap-oci source add``. ``.path`` is the mirror, ``.refs`` what it fetched, ``.skipped``
  refs it could not copy (``.shallow``: only tips were copied, see the function).
- :func:`ensure_source` ``(default_url=UPSTREAM_URL)`` -> ``Path``: the mirror, filled from
  ``default_url`` when it holds no commit yet; fails fast (``timeout`` s) when unreachable.
- :func:`resolve_ref` ``(ref)`` -> ``str``: the full commit sha of a commit, tag or branch.
- :func:`requirements_for` ``(commit, backend)`` -> :class:`Requirements`: the exact
  requirements text for a backend at a commit, read with ``git show`` (no checkout).
- :func:`wheel_key` ``(requirements, python_version, platform)`` -> ``str``.
- :func:`ensure_wheels` ``(commit, backend, python_version, platform)`` -> :class:`WheelSet`:
  ``pip download`` of those requirements for the host's platform and Python, once per key.

Backends map to requirement sources as follows (``BACKENDS``, from the one backend table in
``plugins/module_utils/gpu_table.py``; the ``faceswap`` role's ``vars/main.yml`` holds a copy
for installs from the package index, checked against it by a unit test):

- ``cpu``: ``requirements/_requirements_base.txt`` plus ``torch==2.12.1`` from the default
  index. Faceswap's ``requirements_cpu.txt`` points at PyTorch's own CPU index, which is not
  reachable everywhere; the package index's torch runs on the CPU too, and Faceswap's runtime
  check refuses torch 2.13 and newer, hence the pin.
- ``nvidia13``: ``requirements/requirements_nvidia_13.txt`` (CUDA 13 wheels, its extra index).
- ``nvidia12``: ``requirements/requirements_nvidia_12.txt`` (CUDA 12.6 wheels, its extra index).

Every failure raises :class:`CacheError` whose message names the cause and the fix.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from faceswap_oci.content import module_util
from faceswap_oci.errors import FaceswapOciError

__all__ = [
    "BACKENDS",
    "CPU_TORCH_SPEC",
    "DEFAULT_PLATFORM",
    "DEFAULT_PYTHON",
    "UPSTREAM_URL",
    "BackendRequirements",
    "CacheError",
    "Requirements",
    "SourceAdded",
    "WheelSet",
    "add_source",
    "cache_root",
    "ensure_source",
    "ensure_wheels",
    "platform_tags",
    "requirements_for",
    "resolve_ref",
    "source_dir",
    "wheel_key",
    "wheels_dir",
]

UPSTREAM_URL = "https://github.com/deepfakes/faceswap.git"
DEFAULT_PYTHON = "3.11"
DEFAULT_PLATFORM = "manylinux_2_28_x86_64"
SOURCE_DIR_NAME = "faceswap.git"
WHEELS_DIR_NAME = "wheels"
WHEELSET_FILE = "wheelset.json"


class CacheError(FaceswapOciError):
    """The Faceswap source cache or the wheel cache cannot give what was asked."""

    exit_code = 5


@dataclass(frozen=True)
class BackendRequirements:
    """Where a backend's requirements come from inside Faceswap's tree."""

    files: tuple[str, ...]
    extra: tuple[str, ...] = ()


def _backends() -> dict[str, BackendRequirements]:
    """The installable backends of the one backend table (module_utils/gpu_table.py)."""
    table = module_util("gpu_table").BACKENDS
    return {
        name: BackendRequirements(tuple(table[name].requirements), tuple(table[name].extra))
        for name in ("cpu", "nvidia13", "nvidia12")
    }


BACKENDS: dict[str, BackendRequirements] = _backends()
CPU_TORCH_SPEC: str = BACKENDS["cpu"].extra[0]


@dataclass(frozen=True)
class Requirements:
    """Flattened requirements: ``-r`` includes expanded, index options split out."""

    backend: str
    commit: str
    lines: tuple[str, ...]
    index_urls: tuple[str, ...]

    @property
    def text(self) -> str:
        """The requirements file content (no index options), one requirement a line."""
        return "".join(f"{line}\n" for line in self.lines)


@dataclass(frozen=True)
class WheelSet:
    """A downloaded wheel set ready to ship: ``pip install --no-index --find-links path``."""

    path: Path
    key: str
    requirements_file: Path
    files: int
    bytes: int
    download_seconds: float
    reused: bool


def cache_root() -> Path:
    """``$FSOCI_CACHE_DIR``, else the platform's cache folder (``$XDG_CACHE_HOME/faceswap-oci``,
    else ``~/.cache/faceswap-oci`` on Linux; ``~/Library/Caches/faceswap-oci`` on a Mac)."""
    explicit = os.environ.get("FSOCI_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser().absolute()
    return Path(platformdirs.user_cache_dir("faceswap-oci")).expanduser().absolute()


def source_dir(root: Path | None = None) -> Path:
    """The bare git mirror of the Faceswap source."""
    return (root or cache_root()) / SOURCE_DIR_NAME


def wheels_dir(root: Path | None = None) -> Path:
    """The folder holding one sub-folder per wheel set."""
    return (root or cache_root()) / WHEELS_DIR_NAME


def _git(
    args: list[str], *, cwd: Path | None = None, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="true", LC_ALL="C")
    if shutil.which("git") is None:
        raise CacheError("git is not installed on the controller; install git and retry")
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise CacheError(f"git {' '.join(args[:2])} timed out after {timeout:.0f} s") from exc


def _init_mirror(root: Path | None) -> Path:
    repo = source_dir(root)
    if not (repo / "HEAD").is_file():
        repo.mkdir(parents=True, exist_ok=True)
        done = _git(["init", "--bare", "--quiet", str(repo)])
        if done.returncode != 0:
            raise CacheError(f"cannot create the Faceswap source cache at {repo}: {done.stderr}")
    return repo


def _has_commits(repo: Path) -> bool:
    done = _git(["-C", str(repo), "rev-list", "-n", "1", "--all"])
    return done.returncode == 0 and bool(done.stdout.strip())


@dataclass(frozen=True)
class SourceAdded:
    """What :func:`add_source` fetched: ``shallow`` when only ref tips could be copied."""

    path: Path
    refs: tuple[str, ...]
    skipped: tuple[str, ...] = ()
    shallow: bool = False


_REFSPECS = (
    "+refs/heads/*:refs/heads/*",
    "+refs/remotes/origin/*:refs/heads/*",
    "+refs/tags/*:refs/tags/*",
)


def _list_refs(repo: Path) -> tuple[str, ...]:
    done = _git(["-C", str(repo), "for-each-ref", "--format=%(refname)", "refs/heads", "refs/tags"])
    return tuple(done.stdout.split())


def _fetch_tips(repo: Path, source: str, timeout: float) -> tuple[list[str], list[str]]:
    """Fetch each branch and tag tip alone with ``--depth 1``; return (fetched, skipped)."""
    listed = _git(["ls-remote", source], timeout=timeout)
    if listed.returncode != 0:
        return [], []
    shallow_fetch = ["-C", str(repo), "fetch", "--quiet", "--depth", "1", "--no-write-fetch-head"]
    fetched: list[str] = []
    skipped: list[str] = []
    for line in listed.stdout.splitlines():
        name = line.split("\t", 1)[-1]
        if name.endswith("^{}"):
            continue
        if name.startswith("refs/remotes/origin/") and name != "refs/remotes/origin/HEAD":
            target = "refs/heads/" + name.removeprefix("refs/remotes/origin/")
        elif name.startswith(("refs/heads/", "refs/tags/")):
            target = name
        else:
            continue
        done = _git(
            [*shallow_fetch, source, f"+{name}:{target}"],
            timeout=timeout,
        )
        (fetched if done.returncode == 0 else skipped).append(target)
    return fetched, skipped


def add_source(
    path_or_url: str, *, root: Path | None = None, timeout: float = 900.0
) -> SourceAdded:
    """Fetch every branch and tag of ``path_or_url`` into the source cache.

    ``path_or_url`` is a local clone (working tree or bare) or any URL git understands.
    Branches land under ``refs/heads/`` (a clone's remote-tracking branches too), tags under
    ``refs/tags/``; existing refs are updated, nothing is pruned. When the full history cannot
    be copied (a source with missing objects, e.g. a snapshot whose large blobs were dropped),
    each branch and tag tip is fetched alone with ``--depth 1`` and the refs whose tip is
    itself incomplete are reported in ``skipped``.
    """
    source = path_or_url
    local = Path(path_or_url).expanduser()
    if local.exists():
        source = str(local.absolute())
    elif "://" not in path_or_url and "@" not in path_or_url:
        raise CacheError(
            f"faceswap source {path_or_url!r} is neither an existing path nor a URL; "
            "give a local clone of deepfakes/faceswap or its git URL"
        )
    repo = _init_mirror(root)
    done = _git(
        ["-C", str(repo), "fetch", "--quiet", "--no-write-fetch-head", source, *_REFSPECS],
        timeout=timeout,
    )
    if done.returncode == 0 and _has_commits(repo):
        return SourceAdded(repo, _list_refs(repo))
    fetched, skipped = _fetch_tips(repo, source, timeout)
    if not fetched:
        reason = done.stderr.strip() or "git fetch failed"
        if done.returncode == 0:
            reason = "it holds no commits; is it a clone of deepfakes/faceswap?"
        raise CacheError(
            f"cannot fetch the Faceswap source from {path_or_url!r} into {repo}: {reason}"
        )
    return SourceAdded(repo, tuple(fetched), tuple(skipped), shallow=True)


def ensure_source(
    default_url: str = UPSTREAM_URL, *, root: Path | None = None, timeout: float = 60.0
) -> Path:
    """Return the source mirror, filling it from ``default_url`` if it holds no commit yet."""
    repo = source_dir(root)
    if (repo / "HEAD").is_file() and _has_commits(repo):
        return repo
    try:
        return add_source(default_url, root=root, timeout=timeout).path
    except CacheError as exc:
        raise CacheError(
            f"the Faceswap source cache at {repo} is empty and {default_url} could not be "
            f"fetched ({exc}); on a machine without access to it, run "
            "`faceswap-oci source add <path-or-url>` with a local clone of deepfakes/faceswap"
        ) from exc


def resolve_ref(ref: str, *, root: Path | None = None) -> str:
    """Return the full commit sha that ``ref`` (sha, abbreviated sha, tag, branch) names."""
    repo = source_dir(root)
    if ref.startswith("-") or not ref.strip():
        raise CacheError(f"faceswap.ref {ref!r} is not a valid git ref")
    if (repo / "HEAD").is_file():
        done = _git(["-C", str(repo), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"])
        sha = done.stdout.strip()
        if done.returncode == 0 and len(sha) == 40:
            return sha
    raise CacheError(
        f"faceswap.ref {ref!r} not found in the Faceswap source cache at {repo}; "
        "run `faceswap-oci source add <path-or-url>` or pick a commit/tag from "
        f"`git -C {repo} tag`"
    )


def _show(repo: Path, commit: str, path: str) -> str:
    done = _git(["-C", str(repo), "show", f"{commit}:{path}"])
    if done.returncode != 0:
        raise CacheError(
            f"{path} does not exist at Faceswap commit {commit} in {repo}; "
            "pick a Faceswap 3 commit (v3.0.0 or newer)"
        )
    return done.stdout


def _flatten(
    repo: Path, commit: str, path: str, lines: list[str], indexes: list[str], depth: int = 0
) -> None:
    if depth > 5:
        raise CacheError(f"requirements include loop at {path} (commit {commit})")
    folder = path.rsplit("/", 1)[0] if "/" in path else ""
    for raw in _show(repo, commit, path).splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ")):
            include = line.split(None, 1)[1].strip()
            _flatten(repo, commit, f"{folder}/{include}" if folder else include, lines, indexes)
        elif line.startswith(("--extra-index-url ", "--index-url ")):
            indexes.append(line.split(None, 1)[1].strip())
        elif line.startswith("-"):
            raise CacheError(f"unsupported option {line!r} in {path} at Faceswap commit {commit}")
        elif line not in lines:
            lines.append(line)


def requirements_for(commit: str, backend: str, *, root: Path | None = None) -> Requirements:
    """The requirements a ``backend`` install needs at ``commit`` (see the module docstring)."""
    if backend not in BACKENDS:
        raise CacheError(f"faceswap backend {backend!r} unknown; choose one of {sorted(BACKENDS)}")
    repo = source_dir(root)
    spec = BACKENDS[backend]
    lines: list[str] = []
    indexes: list[str] = []
    for path in spec.files:
        _flatten(repo, commit, path, lines, indexes)
    lines.extend(spec.extra)
    return Requirements(backend, commit, tuple(lines), tuple(indexes))


def wheel_key(requirements: Requirements, python_version: str, platform: str) -> str:
    """Key of a wheel set: hash of requirements, index URLs, Python, platform and backend."""
    digest = hashlib.sha256()
    for part in (
        requirements.text,
        "\n".join(requirements.index_urls),
        python_version,
        platform,
        requirements.backend,
    ):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _python_tag(python_version: str) -> str:
    parts = python_version.split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        raise CacheError(f"python version {python_version!r} is not of the form 3.11")
    return f"{parts[0]}{parts[1]}"


_LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


def platform_tags(platform: str) -> list[str]:
    """Every pip platform tag a host of ``platform`` accepts, newest first.

    ``pip download --platform`` matches tags literally, so ``manylinux_2_28_x86_64`` alone
    misses the many wheels tagged only ``manylinux_2_17``/``manylinux2014``; glibc is
    backwards compatible, so every older manylinux tag of the same architecture is listed.
    """
    parts = platform.split("_", 3)
    if len(parts) != 4 or parts[0] != "manylinux" or not (parts[1] + parts[2]).isdigit():
        return [platform]
    major, minor, arch = int(parts[1]), int(parts[2]), parts[3]
    tags: list[str] = []
    for glibc_minor in range(minor, 4, -1):
        tags.append(f"manylinux_{major}_{glibc_minor}_{arch}")
        if glibc_minor in _LEGACY_MANYLINUX:
            tags.append(f"{_LEGACY_MANYLINUX[glibc_minor]}_{arch}")
    return tags


def _load_wheelset(path: Path, key: str, reused: bool) -> WheelSet:
    info = json.loads((path / WHEELSET_FILE).read_text())
    return WheelSet(
        path=path,
        key=key,
        requirements_file=path / "requirements.txt",
        files=int(info["files"]),
        bytes=int(info["bytes"]),
        download_seconds=float(info["download_seconds"]),
        reused=reused,
    )


def ensure_wheels(
    commit: str,
    backend: str,
    python_version: str = DEFAULT_PYTHON,
    platform: str = DEFAULT_PLATFORM,
    *,
    root: Path | None = None,
    pip: tuple[str, ...] | None = None,
    timeout: float = 3600.0,
) -> WheelSet:
    """Download (once) the wheels a ``backend`` install at ``commit`` needs on the host.

    ``platform`` is a pip platform tag (``manylinux_2_28_x86_64`` fits Debian 12, Ubuntu
    22.04/24.04 and Oracle Linux 8/9 on x86_64; ``manylinux_2_28_aarch64`` for Ampere shapes).
    The set lands in ``wheels/<key>/`` with a flattened ``requirements.txt``; the host installs
    it with ``pip install --no-index --find-links <dir> -r <dir>/requirements.txt``.
    """
    requirements = requirements_for(commit, backend, root=root)
    key = wheel_key(requirements, python_version, platform)
    target = wheels_dir(root) / key
    if (target / WHEELSET_FILE).is_file():
        return _load_wheelset(target, key, reused=True)
    # One download per key at a time: two jobs (or test sessions) starting together share it.
    wheels_dir(root).mkdir(parents=True, exist_ok=True)
    with open(wheels_dir(root) / f".{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / WHEELSET_FILE).is_file():
            return _load_wheelset(target, key, reused=True)
        return _download_wheels(requirements, key, target, python_version, platform, pip, timeout)


def _download_wheels(
    requirements: Requirements,
    key: str,
    target: Path,
    python_version: str,
    platform: str,
    pip: tuple[str, ...] | None,
    timeout: float,
) -> WheelSet:
    backend, commit = requirements.backend, requirements.commit
    tag = _python_tag(python_version)
    partial = target.with_name(f".{key}.partial")
    partial.mkdir(parents=True, exist_ok=True)
    (partial / "requirements.txt").write_text(requirements.text)
    command = [
        *(pip or (sys.executable, "-m", "pip")),
        "download",
        "--disable-pip-version-check",
        "--no-input",
        "--only-binary=:all:",
        *(f"--platform={tag}" for tag in platform_tags(platform)),
        "--python-version",
        python_version,
        "--implementation",
        "cp",
        "--abi",
        f"cp{tag}",
        "--dest",
        str(partial),
        "-r",
        str(partial / "requirements.txt"),
    ]
    for url in requirements.index_urls:
        command += ["--extra-index-url", url]
    started = time.monotonic()
    log = partial / "pip-download.log"
    with log.open("w") as out:
        try:
            done = subprocess.run(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise CacheError(f"pip download timed out after {timeout:.0f} s; see {log}") from exc
        except FileNotFoundError as exc:
            raise CacheError(f"cannot run pip ({command[0]}): {exc}") from exc
    seconds = time.monotonic() - started
    if done.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        raise CacheError(
            f"pip download of the {backend} requirements (Faceswap {commit[:12]}, Python "
            f"{python_version}, {platform}) failed with exit code {done.returncode}; see {log}:\n"
            + "\n".join(tail)
        )
    wheels = sorted(partial.glob("*.whl"))
    info = {
        "key": key,
        "commit": commit,
        "backend": backend,
        "python_version": python_version,
        "platform": platform,
        "index_urls": list(requirements.index_urls),
        "files": len(wheels),
        "bytes": sum(w.stat().st_size for w in wheels),
        "download_seconds": round(seconds, 1),
    }
    (partial / WHEELSET_FILE).write_text(json.dumps(info, indent=2) + "\n")
    if target.exists():
        shutil.rmtree(target)
    partial.rename(target)
    return _load_wheelset(target, key, reused=False)

# Copyright: faceswap-oci developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one builder of Faceswap's command lines (``faceswap.py extract|train|convert``).

The extract and convert roles build their commands through the ``faceswap_oci.core.faceswap_argv``
filter; the training supervisor (``roles/faceswap_train/files/fsoci_train.py``) can take
:func:`train_argv` (this file imports only the standard library, so it can be copied beside the
supervisor on the host). ``tests/unit/plugins/test_faceswap_cli.py`` checks every flag written
here against Faceswap's own argument lists (``lib/cli/args*.py``) at the pinned commit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any


def _head(python: str, script: str, command: str) -> list[str]:
    return [str(python), str(script), command]


def extract_argv(
    python: str,
    script: str,
    *,
    input: str,
    output: str,
    detector: str,
    aligner: str,
    size: int,
    every_n: int,
    log: str,
    masker: Sequence[str] = (),
    extra: Sequence[str] = (),
) -> list[str]:
    """One side's extraction; ``-s -e`` skip frames and faces already extracted (a re-run after
    an interruption resumes)."""
    argv = [*_head(python, script, "extract"), "-i", input, "-o", output]
    argv += ["-D", detector, "-A", aligner]
    if masker:
        argv += ["-M", *masker]
    argv += ["-z", str(int(size)), "-N", str(int(every_n)), "-s", "-e", "-F", log]
    return [*argv, *map(str, extra)]


def convert_argv(
    python: str,
    script: str,
    *,
    input: str,
    output: str,
    model_dir: str,
    writer: str,
    ini: str,
    log: str,
    color: str = "",
    mask_type: str = "",
    extra: Sequence[str] = (),
) -> list[str]:
    """The conversion of the A media; an empty ``color``/``mask_type`` is Faceswap's default."""
    argv = [*_head(python, script, "convert"), "-i", input, "-o", output, "-m", model_dir]
    argv += ["-w", writer, "-C", ini, "-F", log]
    if color:
        argv += ["-c", color]
    if mask_type:
        argv += ["-M", mask_type]
    return [*argv, *map(str, extra)]


def train_argv(
    python: str,
    script: str,
    *,
    faces_a: str,
    faces_b: str,
    model_dir: str,
    trainer: str,
    batch_size: int,
    save_every: int,
    log: str,
    ini: str = "",
    iterations: int = 0,
    preview: bool = False,
    exclude_gpus: Sequence[int] = (),
    distributed: bool = False,
    extra: Sequence[str] = (),
) -> list[str]:
    """A training run; ``iterations`` is what is left to train (0: no ``-i``, Faceswap trains
    until stopped)."""
    argv = [*_head(python, script, "train"), "-A", faces_a, "-B", faces_b, "-m", model_dir]
    argv += ["-t", trainer, "-b", str(int(batch_size)), "-s", str(int(save_every)), "-F", log]
    if ini:
        argv += ["-C", ini]
    if iterations > 0:
        argv += ["-i", str(int(iterations))]
    if preview:
        argv.append("-w")
    if exclude_gpus:
        argv += ["-X", *(str(int(i)) for i in exclude_gpus)]
    if distributed:
        argv.append("-d")
    return [*argv, *map(str, extra)]


BUILDERS: dict[str, Callable[..., list[str]]] = {
    "extract": extract_argv,
    "convert": convert_argv,
    "train": train_argv,
}


def faceswap_argv(command: str, options: Mapping[str, Any]) -> list[str]:
    """The command line of ``faceswap.py <command>`` from a mapping of the builder's arguments
    (``python`` and ``script`` included)."""
    if not isinstance(options, Mapping):
        raise ValueError(f"the options must be a mapping, got {type(options).__name__}")
    if command not in BUILDERS:
        raise ValueError(f"faceswap_argv: {command!r} is not one of {sorted(BUILDERS)}")
    given = dict(options)
    try:
        python, script = given.pop("python"), given.pop("script")
    except KeyError as exc:
        raise ValueError(f"faceswap_argv({command!r}): {exc.args[0]!r} is required") from None
    try:
        return BUILDERS[command](python, script, **given)
    except TypeError as exc:
        raise ValueError(f"faceswap_argv({command!r}): {exc}") from None


# OpenMP's wait policy for Faceswap on the CPU backend. torch's CPU wheels run their kernels on
# GNU OpenMP, whose idle threads spin (GOMP_SPINCOUNT) after each parallel region; a small
# model (batch 4, 64 px) has thousands of regions an iteration, so on a machine with other work
# (the `local` target is the user's own, a test run has several jobs at once) the spinning
# takes the cores from that work. PASSIVE makes them sleep instead. Measured on 2 cores with
# benchmarks/cpu_wait.py (docs/performance.md): one process alone 0.83x the CPU time at 1.07x
# the wall time; three at once 0.26x the CPU time and 0.27x the wall time. (Faceswap's
# launcher drops OMP_NUM_THREADS before torch loads, lib/cli/launcher.py
# `_set_environment_variables`, so the thread count cannot be set that way.)
CPU_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


def faceswap_env(backend: str, extra: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The environment of a ``faceswap.py`` process (extract, train, convert): Keras on torch,
    unbuffered output, ``FACESWAP_BACKEND`` when *backend* is set (empty: Faceswap's own
    config decides), OpenMP's passive wait on the CPU backend, then *extra* (the role's
    ``*_env`` option) over all of them."""
    if not isinstance(backend, str):
        raise ValueError(f"the backend must be a string, got {type(backend).__name__}")
    if extra is not None and not isinstance(extra, Mapping):
        raise ValueError(f"the extra environment must be a mapping, got {type(extra).__name__}")
    env = {"KERAS_BACKEND": "torch", "PYTHONUNBUFFERED": "1"}
    if backend:
        env["FACESWAP_BACKEND"] = backend
    if backend == "cpu":
        env.update(CPU_ENV)
    env.update({str(k): str(v) for k, v in (extra or {}).items()})
    return env

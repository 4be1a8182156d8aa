"""Errors raised by faceswap-oci, each with its own CLI exit code.

Every message names what is wrong, where (field, file or phase) and how to fix it.
"""

from __future__ import annotations


class FaceswapOciError(Exception):
    """Base class; ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class _Problems(FaceswapOciError):
    """Every problem found in one file, one per line."""

    exit_code = 2
    what = "problems"

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{path}: {self.what} ({len(problems)} problem(s)):\n{lines}")


class SpecError(_Problems):
    """The job spec is invalid. Raised before any Ansible or OCI call."""

    what = "invalid job spec"


class OciConfigError(_Problems):
    """The OCI config file or profile the job names cannot work. Raised before any call."""

    what = "OCI config problems"


class StateError(FaceswapOciError):
    """The job's state directory is missing, unreadable or belongs to another job."""

    exit_code = 3


class PhaseFailed(FaceswapOciError):
    """An Ansible phase ended in failure."""

    exit_code = 4

    def __init__(self, phase: str, message: str) -> None:
        self.phase = phase
        super().__init__(f"phase {phase!r} failed: {message}")


class Interrupted(FaceswapOciError):
    """The run was cancelled (Ctrl-C); the state is kept for a resume."""

    exit_code = 130


class BadArgument(FaceswapOciError):
    """A command-line argument (a phase, a job name) is not valid. Nothing ran."""

    exit_code = 2


class DetachRefused(FaceswapOciError):
    """``--detach`` could not end the instance's billing without the controller (no working
    instance-principal policy, and a shape whose stopped state is still billed). Nothing ran."""

    exit_code = 2


class ResourcesLeft(FaceswapOciError):
    """Teardown did not finish (API unreachable, or stopped by a second Ctrl-C): cloud
    resources of the job may still exist and cost money."""

    exit_code = 5

"""faceswap-oci: run Faceswap unattended on an OCI GPU VM, an SSH host or this machine.

The Python API::

    import faceswap_oci
    job = faceswap_oci.load_job("job.yml")     # validates; raises SpecError naming each field
    print(faceswap_oci.plan(job).summary())   # what would run, and the estimated cost
    result = faceswap_oci.run(job, on_event=print)   # typed events as it goes
    faceswap_oci.down(job)                    # remove the cloud resources it created
    faceswap_oci.attach("demo")               # follow a detached OCI job again, collect it
    faceswap_oci.check("job.yml")             # what the job needs, read-only, item by item
    faceswap_oci.jobs(); faceswap_oci.status("demo"); faceswap_oci.events("demo", tail=20)
"""

import types
from typing import Any

from faceswap_oci import api as _api
from faceswap_oci import events
from faceswap_oci.api import (
    Attached,
    Plan,
    attach,
    check,
    down,
    jobs,
    plan,
    run,
    status,
    stop,
    sweep,
)
from faceswap_oci.check import CheckItem
from faceswap_oci.errors import FaceswapOciError, Interrupted, PhaseFailed, SpecError, StateError
from faceswap_oci.events import (
    Event,
    JobFailed,
    JobFinished,
    PhaseFinished,
    PhaseSkipped,
    PhaseStarted,
    Progress,
    Report,
    TaskDone,
    TaskStarted,
)
from faceswap_oci.runner import PHASES, JobResult
from faceswap_oci.spec import CONSENT_TEXT, Job, JobSpec, load_job

__version__ = "0.1.0"


class _EventsModule(types.ModuleType):
    """``faceswap_oci.events`` stays the module of the event classes (``from faceswap_oci
    import events as ev; ev.Progress``) and is also the API call that reads a job's event
    log: ``faceswap_oci.events("demo", tail=20)`` is :func:`faceswap_oci.api.events`."""

    def __call__(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return _api.events(*args, **kwargs)


events.__class__ = _EventsModule

__all__ = [
    "CONSENT_TEXT",
    "PHASES",
    "Attached",
    "CheckItem",
    "Event",
    "FaceswapOciError",
    "Interrupted",
    "Job",
    "JobFailed",
    "JobFinished",
    "JobResult",
    "JobSpec",
    "PhaseFailed",
    "PhaseFinished",
    "PhaseSkipped",
    "PhaseStarted",
    "Plan",
    "Progress",
    "Report",
    "SpecError",
    "StateError",
    "TaskDone",
    "TaskStarted",
    "attach",
    "check",
    "down",
    "events",
    "jobs",
    "load_job",
    "plan",
    "run",
    "status",
    "stop",
    "sweep",
]

"""faceswap-oci: run Faceswap unattended on an OCI GPU VM, an SSH host or this machine.

The Python API::

    import faceswap_oci
    job = faceswap_oci.load_job("job.yml")     # validates; raises SpecError naming each field
    print(faceswap_oci.plan(job).summary())   # what would run, and the estimated cost
    result = faceswap_oci.run(job, on_event=print)   # typed events as it goes
    faceswap_oci.down(job)                    # remove the cloud resources it created
"""

from faceswap_oci.api import Plan, down, plan, run
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

__all__ = [
    "CONSENT_TEXT",
    "PHASES",
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
    "down",
    "load_job",
    "plan",
    "run",
]

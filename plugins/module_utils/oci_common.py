# Copyright: faceswap-oci developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared, typed helpers for the faceswap_oci.core OCI modules.

Everything here takes plain arguments (never an AnsibleModule), so it is unit-tested directly.
The SDK does all HTTP, signing, retries (``oci.retry``), paging (``oci.pagination``) and waiting
(``oci.wait_until``); this file only chooses how.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Final, TypeVar

try:
    import oci
    from oci.retry import retry_checkers

    HAS_OCI = True
    OCI_IMPORT_ERROR: str | None = None
except ImportError as _exc:  # pragma: no cover - reported by the modules
    HAS_OCI = False
    OCI_IMPORT_ERROR = str(_exc)

from ansible_collections.faceswap_oci.core.plugins.module_utils.oci_config_check import (
    Problem,
    check_oci_config,
)

JOB_TAG: Final = "faceswap-oci-job"
CREATED_TAG: Final = "faceswap-oci-created"
GONE_STATES: Final = frozenset({"TERMINATING", "TERMINATED", "DETACHING", "DETACHED"})

# Status codes whose answer says "no capacity for this shape here": try the next AD/shape.
CAPACITY_CODES: Final = {
    "LimitExceeded": "limit_exceeded",
    "QuotaExceeded": "quota_exceeded",
}
OUT_OF_CAPACITY_TEXT: Final = "out of host capacity"

# The shared module options (documented in doc_fragments/oci.py).
AUTH_ARGSPEC: Final[dict[str, dict[str, Any]]] = {
    "config_file": {"type": "path", "default": "~/.oci/config"},
    "profile": {"type": "str", "default": "DEFAULT"},
    "auth_type": {
        "type": "str",
        "default": "api_key",
        "choices": ["api_key", "security_token", "instance_principal", "resource_principal"],
    },
    "region": {"type": "str"},
    "service_endpoint": {"type": "str"},
    "wait": {"type": "bool", "default": True},
    "wait_timeout": {"type": "int", "default": 1200},
}

# The options of the modules of one job's resources (doc_fragments/oci.py, JOB), and of those
# that make one kind of resource exist or not (each documents its own state).
JOB_ARGSPEC: Final[dict[str, dict[str, Any]]] = {
    "compartment_id": {"type": "str", "required": True},
    "job": {"type": "str", "required": True},
}
RESOURCE_ARGSPEC: Final[dict[str, dict[str, Any]]] = {
    **JOB_ARGSPEC,
    "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
}

T = TypeVar("T")


class ConfigProblems(Exception):
    """The OCI config (or an OCID option) is unusable; found before any API call."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


def argspec(
    *shared: Mapping[str, dict[str, Any]], **extra: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """The module's argument_spec: the auth/wait options, the ``shared`` groups it takes
    (``JOB_ARGSPEC``, ``RESOURCE_ARGSPEC``), then its own (copies: a module may change them)."""
    spec: dict[str, dict[str, Any]] = {}
    for group in (AUTH_ARGSPEC, *shared, extra):
        spec.update((k, dict(v)) for k, v in group.items())
    return spec


# --- clients -----------------------------------------------------------------------------------


AUTH_TYPES: Final = ("api_key", "security_token", "instance_principal", "resource_principal")


def load_config(
    config_file: str, profile: str, region: str | None, auth_type: str = "api_key"
) -> dict[str, Any]:
    """The SDK config dict for ``profile`` of ``config_file``, with ``region`` overriding it.

    Principals (instance, resource) read no file: their identity comes from the signer.
    """
    if auth_type in ("instance_principal", "resource_principal"):
        config: dict[str, Any] = {}
    else:
        config = dict(oci.config.from_file(file_location=config_file, profile_name=profile))
    if region:
        config["region"] = region
    return config


def make_signer(config: Mapping[str, Any], auth_type: str) -> Any | None:
    """The signer for ``auth_type``, as Oracle's SDK documentation builds each one; None for
    ``api_key`` (the client signs with the profile's key itself).

    - security_token (`oci session authenticate`): ``SecurityTokenSigner(token, private_key)``
      from the profile's ``security_token_file`` and ``key_file`` (docs.oracle.com/iaas/Content/
      API/SDKDocs/clitoken.htm, "Token-based Authentication for the SDKs"). A client built from
      such a profile without this signer fails with ``InvalidConfig`` (no user, no fingerprint).
    - instance_principal: ``InstancePrincipalsSecurityTokenSigner()``.
    - resource_principal: ``get_resource_principals_signer()`` (OCI Functions, Data Science).
    """
    if auth_type == "api_key":
        return None
    if auth_type == "security_token":
        token_file = os.path.expanduser(str(config["security_token_file"]))
        with open(token_file, encoding="utf-8") as fh:
            token = fh.read().strip()
        key = oci.signer.load_private_key_from_file(config["key_file"], config.get("pass_phrase"))
        return oci.auth.signers.SecurityTokenSigner(token, key)
    if auth_type == "instance_principal":
        return oci.auth.signers.InstancePrincipalsSecurityTokenSigner()
    if auth_type == "resource_principal":
        return oci.auth.signers.get_resource_principals_signer()
    raise ValueError(f"auth_type {auth_type!r}: choose one of {list(AUTH_TYPES)}")


def create_client(
    client_class: type[T],
    config: Mapping[str, Any],
    service_endpoint: str | None = None,
    auth_type: str = "api_key",
    signer: Any | None = None,
) -> T:
    """An SDK client with the default retry strategy and without the circuit breaker.

    The circuit breaker is off because the failover ladder meets many 5xx "Out of host capacity"
    answers in a row by design; the breaker would then refuse every further call for 30 s.
    """
    kwargs: dict[str, Any] = {
        "retry_strategy": oci.retry.DEFAULT_RETRY_STRATEGY,
        "circuit_breaker_strategy": oci.circuit_breaker.NoCircuitBreakerStrategy(),
    }
    if service_endpoint:
        kwargs["service_endpoint"] = service_endpoint
    if signer is None and auth_type != "api_key":
        signer = make_signer(config, auth_type)
    if signer is not None:
        kwargs["signer"] = signer
    return client_class(dict(config), **kwargs)  # type: ignore[call-arg]


# --- retries -----------------------------------------------------------------------------------


def capacity_reason(exc: BaseException) -> str | None:
    """Why a launch found no capacity (a final answer for that AD and shape), else None."""
    if not isinstance(exc, oci.exceptions.ServiceError):
        return None
    if exc.code in CAPACITY_CODES:
        return CAPACITY_CODES[exc.code]
    if exc.status == 500 and OUT_OF_CAPACITY_TEXT in str(exc.message or "").lower():
        return "out_of_host_capacity"
    return None


class _LaunchErrorChecker(retry_checkers.BaseRetryChecker if HAS_OCI else object):  # type: ignore[misc]
    """Retry throttling, transient 5xx and timeouts, never a capacity answer."""

    def __init__(self) -> None:
        self._inner = retry_checkers.TimeoutConnectionAndServiceErrorRetryChecker()

    def should_retry(
        self, exception: BaseException | None = None, response: Any = None, **kwargs: Any
    ) -> bool:
        if exception is not None and capacity_reason(exception) is not None:
            return False
        return bool(self._inner.should_retry(exception=exception, response=response, **kwargs))


def ladder_reason(exc: BaseException) -> str | None:
    """Why a launch failed in a way that leaves the next shape or AD worth trying, else None.

    Capacity answers (``capacity_reason``), a 429 or a non-capacity 5xx that outlived the
    launch's retries (one shape's throttling or a broken rack must not end the whole ladder),
    and a shape that refuses preemptible capacity (VM shapes only: docs.oracle.com/iaas/Content/
    Compute/Concepts/preemptible.htm).
    """
    reason = capacity_reason(exc)
    if reason is not None or not isinstance(exc, oci.exceptions.ServiceError):
        return reason
    if exc.status == 429:
        return "throttled"
    if exc.status >= 500 and exc.status != 501:
        return "service_error"
    if exc.status == 400 and "preemptible" in str(exc.message or "").lower():
        return "preemptible_unsupported"
    return None


def supports_preemptible(shape: str) -> bool:
    """Preemptible capacity exists for VM shapes only (docs.oracle.com/iaas/Content/Compute/
    Concepts/preemptible.htm, "Limitations": bare metal shapes are not supported)."""
    return not shape.startswith("BM.")


def _checker_strategy(
    checker: Any, total_seconds: int, max_attempts: int = 50, max_sleep: float = 10.0
) -> Any:
    container = retry_checkers.RetryCheckerContainer(
        checkers=[
            retry_checkers.LimitBasedRetryChecker(max_attempts=max_attempts),
            retry_checkers.TotalTimeExceededRetryChecker(time_limit_seconds=total_seconds),
            checker,
        ]
    )
    return oci.retry.ExponentialBackoffWithFullJitterRetryStrategy(
        base_sleep_time_seconds=1,
        exponent_growth_factor=2,
        max_wait_between_calls_seconds=max_sleep,
        checker_container=container,
    )


def delete_retry_strategy(total_seconds: int) -> Any:
    """Retry strategy for deletes: the SDK's default retries plus 409 ``Conflict``, for up to
    ``total_seconds``.

    A subnet still "references the VNIC" of an instance for a while after the instance is
    TERMINATED (the real service answers DeleteSubnet with 409 Conflict until the VNIC is
    released), and a route table or security list is in use until its subnet is gone.
    """
    config = dict(retry_checkers.RETRYABLE_STATUSES_AND_CODES)
    config[409] = [*config.get(409, []), "Conflict"]
    return _checker_strategy(
        retry_checkers.TimeoutConnectionAndServiceErrorRetryChecker(
            service_error_retry_config=config
        ),
        total_seconds,
    )


def read_after_create_strategy(total_seconds: int = 60) -> Any:
    """Retry strategy for reads right after a create: the SDK's default retries plus 404
    ``NotAuthorizedOrNotFound``, which Oracle's API error table marks as retryable (eventual
    consistency: docs.oracle.com/iaas/Content/API/References/apierrors.htm)."""
    config = dict(retry_checkers.RETRYABLE_STATUSES_AND_CODES)
    config[404] = ["NotAuthorizedOrNotFound"]
    return _checker_strategy(
        retry_checkers.TimeoutConnectionAndServiceErrorRetryChecker(
            service_error_retry_config=config
        ),
        total_seconds,
        max_sleep=5.0,
    )


def launch_retry_strategy(
    max_attempts: int = 6, total_seconds: int = 180, base_sleep_seconds: float = 1.0
) -> Any:
    """Retry strategy for LaunchInstance: backs off on 429/5xx but returns capacity at once."""
    container = retry_checkers.RetryCheckerContainer(
        checkers=[
            retry_checkers.LimitBasedRetryChecker(max_attempts=max_attempts),
            retry_checkers.TotalTimeExceededRetryChecker(time_limit_seconds=total_seconds),
            _LaunchErrorChecker(),
        ]
    )
    return oci.retry.ExponentialBackoffWithFullJitterRetryStrategy(
        base_sleep_time_seconds=base_sleep_seconds,
        exponent_growth_factor=2,
        max_wait_between_calls_seconds=30,
        checker_container=container,
    )


# --- lists and waits ---------------------------------------------------------------------------


def list_all(list_fn: Callable[..., Any], *args: Any, **kwargs: Any) -> list[Any]:
    """Every item of a paged list call (``oci.pagination``), with the default retry strategy."""
    kwargs.setdefault("retry_strategy", oci.retry.DEFAULT_RETRY_STRATEGY)
    return list(oci.pagination.list_call_get_all_results(list_fn, *args, **kwargs).data)


def wait_for(
    client: Any,
    get_fn: Callable[..., Any],
    ocid: str,
    states: Iterable[str],
    timeout: int,
    *,
    succeed_on_not_found: bool = False,
    fail_states: Iterable[str] = (),
) -> Any:
    """Poll ``get_fn(ocid)`` with ``oci.wait_until`` until ``lifecycle_state`` is in ``states``.

    Returns the last model (None when it is gone and ``succeed_on_not_found``). A state in
    ``fail_states`` ends the wait early with ``WaitFailed``.
    """
    wanted = set(states)
    failing = set(fail_states)
    failed: list[str] = []

    def done(resp: Any) -> bool:
        state = resp.data.lifecycle_state
        if state in failing:
            failed.append(state)
            return True
        return state in wanted

    first_read = (
        oci.retry.DEFAULT_RETRY_STRATEGY
        if succeed_on_not_found
        else read_after_create_strategy(min(60, max(1, timeout)))
    )
    try:
        resp = oci.wait_until(
            client,
            get_fn(ocid, retry_strategy=first_read),
            evaluate_response=done,
            max_wait_seconds=max(1, timeout),
            max_interval_seconds=10,
            succeed_on_not_found=succeed_on_not_found,
        )
    except oci.exceptions.ServiceError as exc:
        if succeed_on_not_found and exc.status == 404:
            return None
        raise
    if resp is oci.waiter.WAIT_RESOURCE_NOT_FOUND:
        return None
    if failed:
        raise WaitFailed(ocid, failed[-1])
    return resp.data


def settled(
    client: Any,
    get_fn: Callable[..., Any],
    model: Any,
    state: str,
    timeout: int,
    *,
    fail_states: Iterable[str] = (),
) -> Any:
    """``model`` once its ``lifecycle_state`` is ``state``: itself when it already is (no call),
    else the last read of ``wait_for``."""
    if model.lifecycle_state == state:
        return model
    return wait_for(client, get_fn, model.id, [state], timeout, fail_states=fail_states)


class WaitFailed(Exception):
    def __init__(self, ocid: str, state: str) -> None:
        super().__init__(f"{ocid} went to {state}")
        self.ocid = ocid
        self.state = state


# --- tags --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobResourceSpec:
    """What every new resource of a job is made with: its compartment, and the job whose
    freeform tags (``job_tags``) it carries. The specs of each kind add their own fields."""

    compartment_id: str
    job: str
    tags: dict[str, str]


def job_tags(job: str, now: dt.datetime | None = None) -> dict[str, str]:
    """The freeform tags every resource of ``job`` carries."""
    when = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {JOB_TAG: job, CREATED_TAG: when}


def has_job_tag(resource: Any, job: str | None) -> bool:
    """Tagged with ``job`` (any job when None)."""
    tags = getattr(resource, "freeform_tags", None) or {}
    return JOB_TAG in tags if job is None else tags.get(JOB_TAG) == job


def is_live(resource: Any) -> bool:
    return getattr(resource, "lifecycle_state", None) not in GONE_STATES


def tagged_live(resources: Iterable[T], job: str | None) -> list[T]:
    """The resources of ``job`` (any job when None) not being or already deleted, oldest first."""
    out = [r for r in resources if has_job_tag(r, job) and is_live(r)]
    return sorted(out, key=lambda r: str(getattr(r, "time_created", "") or ""))


# --- errors ------------------------------------------------------------------------------------

_NEXT_STEPS: Final[dict[int, str]] = {
    401: "check key_file, fingerprint, user and tenancy of the profile in the OCI config file "
    "(`oci setup repair-file-permissions` / re-upload the public key)",
    404: "check the OCID, that it is in this region, and that a policy lets your group use it "
    "in the compartment",
    409: "the resource is busy or still in use; run the task again, or remove what depends on it "
    "first",
    429: "the service is throttling; run the task again later or launch fewer jobs at once",
}


@dataclass(frozen=True)
class ErrorContext:
    action: str
    option: str
    region: str | None
    ocid: str | None = None
    next_step: str | None = None


def _request_id(exc: Any) -> str | None:
    """A ServiceError's opc-request-id (the SDK leaves ``request_id`` empty on some paths)."""
    return exc.request_id or (exc.headers or {}).get("opc-request-id")


def error_text(exc: BaseException) -> str:
    """An error in one line: an SDK ServiceError's status, code, message and request id, any
    other exception's type and text."""
    if HAS_OCI and isinstance(exc, oci.exceptions.ServiceError):
        return f"{exc.status} {exc.code}: {exc.message} (opc-request-id {_request_id(exc)})"
    return f"{type(exc).__name__}: {exc}"


def format_error(exc: BaseException, ctx: ErrorContext) -> str:
    """One line naming the action, option, OCID, region, request id, problem and a next step."""
    where = f"option {ctx.option}"
    if ctx.ocid:
        where += f", OCID {ctx.ocid}"
    where += f", region {ctx.region or 'unknown'}"
    if HAS_OCI and isinstance(exc, oci.exceptions.ServiceError):
        problem = f"{exc.status} {exc.code}: {exc.message}"
        request_id = _request_id(exc)
        step = ctx.next_step or _NEXT_STEPS.get(
            exc.status,
            "run the task again; if it keeps failing, quote the request id to Oracle support",
        )
        if capacity_reason(exc) == "limit_exceeded":
            step = "ask for a service limit increase or list another shape in target.oci.shapes"
        return (
            f"{ctx.action} failed ({where}, opc-request-id {request_id}): {problem}. Next: {step}."
        )
    step = ctx.next_step or "check the options and the OCI config file"
    return f"{ctx.action} failed ({where}): {type(exc).__name__}: {exc}. Next: {step}."


def clients_from_params(params: Mapping[str, Any], *client_classes: type[Any]) -> tuple[Any, ...]:
    """(config, client...) for a module's parameters (the shared options of ``argspec``).

    The config file is checked the way the clients are then built (``check_oci_config`` with
    the same ``auth_type``). For principals the config gets the signer's tenancy, so the
    capacity report can be sent to the root compartment.
    """
    auth = params.get("auth_type") or "api_key"
    if auth in ("api_key", "security_token"):
        problems = check_oci_config(
            params["config_file"],
            params["profile"],
            region=params.get("region"),
            compartment=params.get("compartment_id"),
            auth_type=auth,
        )
        if problems:
            raise ConfigProblems(problems)
    config = load_config(params["config_file"], params["profile"], params.get("region"), auth)
    signer = make_signer(config, auth)
    tenancy = getattr(signer, "tenancy_id", None)
    if tenancy and not config.get("tenancy"):
        config["tenancy"] = tenancy
    return (
        config,
        *(
            create_client(c, config, params.get("service_endpoint"), auth, signer)
            for c in client_classes
        ),
    )


class OciModuleRun:
    """The plumbing every OCI module shares.

    It checks the SDK is there, builds clients from the shared options (``argspec``), and, as
    a context manager, turns every config problem, SDK error or wait timeout into one readable
    ``fail_json`` naming the action, option, OCID, region, request id and a next step.
    ``module`` is the ``AnsibleModule``; ``next_step`` is appended to every failure message.
    """

    def __init__(self, module: Any, action: str, next_step: str = "") -> None:
        self.module = module
        if not HAS_OCI:
            module.fail_json(
                msg=f"the oci Python SDK is required on the controller: {OCI_IMPORT_ERROR}"
            )
        params = module.params
        self.ctx = ErrorContext(
            action, "compartment_id", params.get("region"), params.get("compartment_id")
        )
        self.next_step = next_step

    def clients(self, *client_classes: type[Any]) -> tuple[Any, ...]:
        """(config, client...) for the module's parameters; errors name the config's region."""
        config, *clients = clients_from_params(self.module.params, *client_classes)
        self.ctx = replace(self.ctx, region=config.get("region"))
        return (config, *clients)

    def __enter__(self) -> OciModuleRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if not isinstance(exc, Exception):
            return False  # success, or exit_json/fail_json's SystemExit
        if isinstance(exc, ConfigProblems):
            self.module.fail_json(
                msg=f"OCI config problems: {exc}", problems=[vars(x) for x in exc.problems]
            )
        else:
            suffix = f" {self.next_step}" if self.next_step else ""
            self.module.fail_json(msg=format_error(exc, self.ctx) + suffix)
        return True

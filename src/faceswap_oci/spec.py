"""The job spec: one YAML file describes one job.

Parsing and validation only (shape, ranges, cross-field rules, input files). What a role does
with a value is the role's business; a field left ``None`` means "use the role default".
Field names and meanings are documented in ``docs/job-spec.md``.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AllowInfNan,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)

from faceswap_oci.errors import SpecError

CONSENT_TEXT = (
    "I have the consent of every person whose face appears in the A and B media, "
    "and I will label the output as synthetic media."
)
"""The attestation a job must carry, word for word (whitespace and case are not significant)."""

DEFAULT_FACESWAP_REF = "acdcfa8796c26d47e3610efeae102c9d87b2ad89"
"""deepfakes/faceswap master of 2026-06-24 (v3.0.0-45): the commit faceswap-oci is tested with."""

NAME_RE = r"^[a-z0-9][a-z0-9-]{0,38}[a-z0-9]$|^[a-z0-9]$"
OCID_RE = r"^ocid1\.[a-z0-9_]+\.[a-z0-9_-]*\.[a-z0-9_-]*\.[a-z0-9]+$"
CIDR_RE = r"^(auto|(\d{1,3}\.){3}\d{1,3}/\d{1,2})$"
HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)
USER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")
"""A login name as useradd accepts it (no leading '-', no shell or ssh metacharacters)."""

MAX_JOB_FILE_BYTES = 1 << 20
"""A job file is a few KB; beyond 1 MB it is not one."""
MAX_NESTING = 32
"""Deeper YAML than this is no job file (the spec nests 4 levels, ini overrides 5)."""
MAX_SHOWN = 200
"""Echoed values are cut to about this many characters."""
MAX_PROBLEMS = 25
NUL = b"\0"

Int = Annotated[int, Strict()]
"""An integer; YAML's true/false are not taken as 1/0."""
Float = Annotated[float, Strict(), AllowInfNan(False)]
"""A finite number (an integer is fine); .inf, .nan and booleans are refused."""

IniValue = str | int | float | bool
IniSections = dict[str, dict[str, IniValue]]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SshTarget(_Model):
    """An existing host reached over SSH."""

    host: Annotated[str, Field(min_length=1, description="Address or name of the host.")]
    user: str = Field("root", min_length=1, description="SSH login user.")
    port: Int = Field(22, ge=1, le=65535, description="SSH port.")
    key: str | None = Field(
        None, description="Private key file; default: your SSH agent / ~/.ssh config."
    )
    become: bool = Field(
        True, description="Use sudo for system tasks (packages, users, systemd units)."
    )
    host_key_checking: Literal["accept-new", "strict", "off"] = Field(
        "accept-new",
        description="SSH host keys: learn on first use (per job), require known, or ignore.",
    )

    @field_validator("host")
    @classmethod
    def _host_is_a_name_or_address(cls, value: str) -> str:
        return _check_host("target.ssh.host", value)

    @field_validator("user")
    @classmethod
    def _user_is_a_login_name(cls, value: str) -> str:
        return _check_user("target.ssh.user", value)


AUTH_CHOICES = ("api_key", "security_token", "instance_principal", "resource_principal")


class OciStorage(_Model):
    """The job bucket (OCI Object Storage): where the model outlives the VM."""

    enabled: bool = Field(
        True,
        description="Keep snapshots of the model (after each save) and the faces in a bucket, "
        "so a failure, Ctrl-C, preemption or `down` loses no training.",
    )
    bucket: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9._-]{1,256}$",
        description="An existing bucket to use (only the job's prefix jobs/<name>/ is "
        "touched); default: the job's own private bucket fsoci-<name>.",
    )
    namespace: str | None = Field(
        None,
        pattern=r"^[a-z0-9]{1,64}$",
        description="Object Storage namespace; default: asked of the service.",
    )
    keep: bool = Field(
        False,
        description="Keep the bucket (or prefix) after the results were fetched; by default "
        "teardown removes it then, and only then.",
    )


class OciTarget(_Model):
    """A GPU VM that faceswap-oci creates in your compartment and removes afterwards."""

    compartment: Annotated[
        str, Field(pattern=OCID_RE, description="Compartment OCID for every resource.")
    ]
    region: Annotated[str, Field(min_length=3, description="OCI region, e.g. eu-frankfurt-1.")]
    profile: str = Field(
        "DEFAULT",
        description="Section of the OCI config file; when left out, $OCI_CLI_PROFILE or DEFAULT.",
    )
    config_file: str = Field(
        "~/.oci/config",
        description="OCI SDK config file; when left out, $OCI_CONFIG_FILE or ~/.oci/config.",
    )
    auth: Literal["api_key", "security_token", "instance_principal", "resource_principal"] = Field(
        "api_key",
        description="How to authenticate: the profile's API key, its session token (`oci session "
        "authenticate`), or the instance's / resource's principal; when left out, $OCI_CLI_AUTH "
        "or api_key.",
    )
    defined_tags: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="Defined tags (namespace -> key -> value) on every resource, for "
        "compartments whose tag defaults require some.",
    )
    ssh_wait_timeout: int = Field(
        600, ge=30, le=7200, description="Seconds to wait for SSH on the new instance."
    )
    shapes: list[str] = Field(
        default_factory=lambda: ["VM.GPU.A10.1"],
        min_length=1,
        description="GPU shapes tried in order, each in every availability domain.",
    )
    availability_domains: list[str] | None = Field(
        None, description="Availability domains to try, in order; default: all of the region."
    )
    preemptible: bool = Field(False, description="Launch preemptible capacity (about 50% off).")
    preemptible_fallback: bool = Field(
        False, description="When no preemptible capacity is left, fall back to on-demand."
    )
    os: str = Field("Oracle Linux 9", description="Image OS when `image` is not given.")
    image: str | None = Field(None, pattern=OCID_RE, description="Image OCID (overrides `os`).")
    ssh_user: str | None = Field(None, description="Login user; default by OS (opc / ubuntu).")
    boot_volume_gb: Int = Field(200, ge=50, le=32768, description="Boot volume size in GB.")
    ssh_ingress_cidr: str = Field(
        "auto",
        pattern=CIDR_RE,
        description="Who may reach SSH: `auto` (your public address /32) or a CIDR.",
    )
    allow_any_ssh_source: bool = Field(
        False,
        description="Allow `ssh_ingress_cidr: 0.0.0.0/0` (SSH open to the whole internet).",
    )
    subnet: str | None = Field(
        None, pattern=OCID_RE, description="Existing subnet OCID; default: a new VCN per job."
    )
    max_hours: Float = Field(
        12.0, gt=0, le=168, description="Watchdog: the VM powers itself off after this long."
    )
    storage: OciStorage = Field(default_factory=OciStorage)  # type: ignore[arg-type]
    max_recoveries: Int = Field(
        3,
        ge=0,
        le=20,
        description="How many times a preempted instance is replaced (provision again, "
        "restore the latest snapshot, resume) before the job fails.",
    )
    service_endpoint: str | None = Field(
        None, description="Override the API endpoint (tests against a local OCI API)."
    )
    detach: bool = Field(
        False,
        description="Detached job (`run --detach`): the controller hands the job to the VM's "
        "agent and exits; the agent trains, converts, puts the results in the job bucket and "
        "terminates its own instance through its instance principal (docs/detach.md: the "
        "dynamic group and policy `check` verifies). Without that policy only shapes whose "
        "stopped state is not billed (VM.GPU.A10.x) may detach: they power off instead.",
    )

    @field_validator("ssh_user")
    @classmethod
    def _ssh_user_is_a_login_name(cls, value: str | None) -> str | None:
        return None if value is None else _check_user("target.oci.ssh_user", value)

    @field_validator("ssh_ingress_cidr")
    @classmethod
    def _cidr_is_a_network(cls, value: str) -> str:
        if value == "auto":
            return value
        try:
            ipaddress.IPv4Network(value, strict=True)
        except ValueError as exc:
            raise ValueError(
                f"target.oci.ssh_ingress_cidr: {shorten(value)} is not a valid CIDR ({exc}); "
                "use `auto` or e.g. 203.0.113.7/32"
            ) from None
        return value

    @field_validator("service_endpoint")
    @classmethod
    def _endpoint_is_a_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value) if value.isprintable() and " " not in value else None
        if parts is None or parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(
                f"target.oci.service_endpoint: {shorten(value)} is not a URL; give e.g. "
                "https://iaas.eu-frankfurt-1.oraclecloud.com, or leave it out"
            )
        return value

    @model_validator(mode="after")
    def _detach_needs_the_bucket(self) -> OciTarget:
        if self.detach and not self.storage.enabled:
            raise ValueError(
                "target.oci.detach: a detached job puts its results in the job bucket; set "
                "target.oci.storage.enabled: true, or leave detach out"
            )
        return self

    @model_validator(mode="after")
    def _open_ssh_needs_consent(self) -> OciTarget:
        if self.ssh_ingress_cidr == "0.0.0.0/0" and not self.allow_any_ssh_source:
            raise ValueError(
                "target.oci.ssh_ingress_cidr: 0.0.0.0/0 opens SSH to the whole internet; use "
                "`auto` (your address /32), or set target.oci.allow_any_ssh_source: true"
            )
        return self


class Target(_Model):
    kind: Literal["local", "ssh", "oci"] = Field(
        description="`local`: this machine; `ssh`: an existing host; `oci`: a new GPU VM."
    )
    ssh: SshTarget | None = None
    oci: OciTarget | None = None

    @model_validator(mode="after")
    def _section_matches_kind(self) -> Target:
        if self.kind == "ssh" and self.ssh is None:
            raise ValueError(
                "target.ssh is required when target.kind is 'ssh'; add target.ssh.host"
            )
        if self.kind == "oci" and self.oci is None:
            raise ValueError(
                "target.oci is required when target.kind is 'oci'; "
                "add target.oci.compartment and target.oci.region"
            )
        return self


class FaceswapSpec(_Model):
    ref: str = Field(
        DEFAULT_FACESWAP_REF,
        min_length=1,
        description="Faceswap commit or tag (resolved in the controller's source cache).",
    )
    source: str | None = Field(
        None, description="Git repository (path or URL) to add to the source cache first."
    )
    backend: Literal["auto", "cpu", "nvidia13", "nvidia12"] = Field(
        "auto", description="Requirements flavour; `auto` picks it from the detected GPU."
    )
    require_gpu: bool = Field(False, description="Fail when the host has no usable NVIDIA GPU.")
    wheel_cache: bool | None = Field(
        None,
        description="Download the Python wheels on the controller and install with --no-index; "
        "default: yes for ssh/local hosts, no on OCI (the VM downloads faster than you upload).",
    )
    weights: str | None = Field(
        None, description="Controller directory of Faceswap model weights seeded into .fs_cache."
    )


class Inputs(_Model):
    a: str = Field(min_length=1, description="Video (or frames folder) whose face is replaced.")
    b: str = Field(min_length=1, description="Video (or frames folder) of the face to swap in.")
    demo: bool = Field(
        False,
        description="When `a` and `b` are missing, first write small synthetic demo clips "
        "there (they must be <folder>/a.mp4 and <folder>/b.mp4).",
    )


Detector = Literal["cv2-dnn", "mtcnn", "retinaface", "s3fd", "file"]
Aligner = Literal["cv2-dnn", "fan", "hrnet", "file"]
Masker = Literal["bisenet-fp", "custom", "unet-dfl", "vgg-clear", "vgg-obstructed"]


class ExtractSpec(_Model):
    detector: Detector = Field("s3fd", description="Face detector (`file`: alignments JSON).")
    aligner: Aligner = Field("fan", description="Landmark aligner (`file`: alignments JSON).")
    masker: list[Masker] = Field(default_factory=list, description="Extra masks to generate.")
    size: Int = Field(512, ge=256, le=1024, description="Extracted face size in pixels.")
    extract_every_n: Int = Field(1, ge=1, description="Extract every Nth frame.")
    min_faces: Int = Field(25, ge=25, description="Fail when a side has fewer faces.")

    @model_validator(mode="after")
    def _file_aligner_needs_file_detector(self) -> ExtractSpec:
        if self.aligner == "file" and self.detector != "file":
            raise ValueError(
                "extract.aligner 'file' needs extract.detector 'file' (Faceswap forces it); "
                "set extract.detector: file"
            )
        return self


Trainer = Literal[
    "original",
    "lightweight",
    "dfaker",
    "dfl-h128",
    "dfl-sae",
    "dlight",
    "iae",
    "phaze-a",
    "realface",
    "unbalanced",
    "villain",
]


class StopSpec(_Model):
    iterations: Int | None = Field(100_000, gt=0, description="Stop at this cumulative count.")
    hours: Float | None = Field(6.0, gt=0, description="Stop after this much training time.")
    plateau_saves: Int | None = Field(
        None, gt=0, description="Stop when N saves in a row bring no new lowest average loss."
    )

    @model_validator(mode="after")
    def _at_least_one(self) -> StopSpec:
        if self.iterations is None and self.hours is None and self.plateau_saves is None:
            raise ValueError(
                "train.stop needs at least one of iterations, hours or plateau_saves; "
                "training would never end"
            )
        return self


class TrainSpec(_Model):
    trainer: Trainer = Field("original", description="Faceswap model plugin.")
    batch_size: Int = Field(16, ge=1, le=512, description="Batch size (-b).")
    save_every: Int = Field(250, ge=1, description="Save the model every N iterations (-s).")
    preview: bool = Field(True, description="Write the preview image and bring it back.")
    distributed: bool | Literal["auto"] = Field(
        "auto",
        description="Train on every GPU of the host (Faceswap's -d/--distributed): `auto` when "
        "the host has more than one GPU left after `exclude_gpus`.",
    )
    exclude_gpus: list[int] = Field(
        default_factory=list, description="GPU indices Faceswap must not use (-X/--exclude-gpus)."
    )
    stop: StopSpec = Field(default_factory=StopSpec)  # type: ignore[arg-type]
    config: IniSections = Field(
        default_factory=dict,
        description="train.ini overrides: section -> option -> value.",
    )


ColorAdjust = Literal[
    "avg-color", "color-transfer", "manual-balance", "match-hist", "seamless-clone", "none"
]


FACESWAP_WRITERS = ("ffmpeg", "gif", "opencv", "patch", "pillow")
"""Faceswap's writer plugins; faceswap-oci delivers the ffmpeg writer's video alone."""


class ConvertSpec(_Model):
    writer: Literal["ffmpeg"] = Field(
        "ffmpeg",
        description="Output writer: ffmpeg, the one that writes the tagged video (with the A "
        "audio) that faceswap-oci delivers.",
    )
    keep_audio: bool = Field(True, description="Copy the A video's audio into the output.")
    color: ColorAdjust | None = Field(None, description="Colour adjustment plugin.")
    mask_type: str | None = Field(None, description="Mask used to blend the swapped face.")
    config: IniSections = Field(
        default_factory=dict, description="convert.ini overrides: section -> option -> value."
    )

    @field_validator("writer", mode="before")
    @classmethod
    def _only_the_video_writer(cls, value: Any) -> Any:
        if value in FACESWAP_WRITERS and value != "ffmpeg":
            raise ValueError(
                f"convert.writer: {value!r} writes frames or a GIF, not the tagged video with the "
                "A audio (convert.keep_audio) that the convert phase delivers; set "
                "convert.writer: ffmpeg (convert.keep_audio: false drops the audio)"
            )
        return value


class JobSpec(_Model):
    """One faceswap-oci job."""

    name: Annotated[
        str,
        Field(
            pattern=NAME_RE,
            description="Job name: 1-40 of a-z, 0-9 and '-', used in resource tags and paths.",
        ),
    ]
    consent: Annotated[str, Field(description=f"Must read: {CONSENT_TEXT!r}")]
    target: Target
    inputs: Inputs
    faceswap: FaceswapSpec = Field(default_factory=FaceswapSpec)  # type: ignore[arg-type]
    extract: ExtractSpec = Field(default_factory=ExtractSpec)  # type: ignore[arg-type]
    train: TrainSpec = Field(default_factory=TrainSpec)  # type: ignore[arg-type]
    convert: ConvertSpec = Field(default_factory=ConvertSpec)  # type: ignore[arg-type]
    output: str = Field("output", description="Controller directory for the results.")
    fetch_model: bool = Field(
        False, description="Also bring the trained model folder back into `output`."
    )
    teardown: Literal["always", "on_success", "never"] = Field(
        "always", description="When to remove the cloud resources the job created."
    )
    notify: list[Annotated[str, Field(min_length=4)]] = Field(
        default_factory=list,
        description="Apprise URLs told when the job finishes or fails, a teardown fails, the "
        "cost threshold is crossed (ntfy://, slack://, discord://, mailto://, tgram://, "
        "json://...). They are credentials: never printed or logged in full.",
    )
    notify_cost_usd: float | None = Field(
        None, gt=0, description="Notify once when the job's list-price cost so far reaches this."
    )
    notify_every_hours: float | None = Field(
        None, gt=0, description="Also notify every N hours of training, with the preview."
    )

    @field_validator("notify")
    @classmethod
    def _notify_urls_have_a_scheme(cls, value: list[str]) -> list[str]:
        for index, url in enumerate(value):
            if "://" not in url:
                # the value is a credential: name its position, never echo it
                raise ValueError(
                    f"notify[{index}]: not an Apprise URL (no scheme://); write it like "
                    "ntfy://topic or json://host:port/path"
                )
        return value

    @field_validator("consent")
    @classmethod
    def _consent_is_the_attestation(cls, value: str) -> str:
        if _normalise(value) != _normalise(CONSENT_TEXT):
            raise ValueError(
                f"consent: must be the attestation {CONSENT_TEXT!r} word for word "
                "(see docs/job-spec.md, section Consent)"
            )
        return value


def redact_url(url: str) -> str:
    """What may be shown or stored of a notification URL (a credential): its scheme only."""
    scheme = url.split("://", 1)[0] if "://" in url else "?"
    return f"{scheme}://…"


def _normalise(text: str) -> str:
    return " ".join(text.split()).casefold()


@dataclass(frozen=True)
class Job:
    """A validated job: the spec plus where it came from, with paths made absolute."""

    spec: JobSpec
    source: Path
    input_a: Path
    input_b: Path
    output_dir: Path

    @property
    def name(self) -> str:
        return self.spec.name

    def public_spec(self) -> dict[str, Any]:
        """The spec as written to disk (state, extra vars): the ``notify`` URLs are credentials,
        so only their scheme is kept."""
        data = self.spec.model_dump(mode="json")
        data["notify"] = [redact_url(url) for url in self.spec.notify]
        return data

    def extravars_spec(self) -> dict[str, Any]:
        """The spec as Ansible sees it (``fsoci``): plain JSON types, absolute paths, and the
        OCI settings the environment decides (``oci_settings``)."""
        data = self.public_spec()
        data["inputs"] = {"a": str(self.input_a), "b": str(self.input_b)}
        data["output"] = str(self.output_dir)
        if self.spec.target.oci is not None:
            data["target"]["oci"].update(oci_settings(self.spec.target.oci))
        return data


def with_detach(job: Job, detach: bool = True) -> Job:
    """``job`` with ``target.oci.detach`` set to ``detach`` (``run --detach`` sets it; the
    controller's own convert run of a ``trained`` detached job clears it); other targets
    unchanged."""
    oci = job.spec.target.oci
    if oci is None or oci.detach == detach:
        return job
    target = job.spec.target.model_copy(update={"oci": oci.model_copy(update={"detach": detach})})
    return replace(job, spec=job.spec.model_copy(update={"target": target}))


def oci_settings(oci: OciTarget, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``config_file``, ``profile`` and ``auth`` as the OCI CLI picks them: what the job file
    sets, else ``OCI_CONFIG_FILE`` (or the CLI's ``OCI_CLI_CONFIG_FILE``), ``OCI_CLI_PROFILE``
    and ``OCI_CLI_AUTH`` from the environment, else the defaults."""
    env = os.environ if environ is None else environ
    given = oci.model_fields_set
    config_file = oci.config_file
    if "config_file" not in given:
        config_file = env.get("OCI_CLI_CONFIG_FILE") or env.get("OCI_CONFIG_FILE") or config_file
    profile = oci.profile if "profile" in given else env.get("OCI_CLI_PROFILE") or oci.profile
    auth = oci.auth if "auth" in given else env.get("OCI_CLI_AUTH") or oci.auth
    if auth not in AUTH_CHOICES:
        raise SpecError(
            "environment",
            [f"OCI_CLI_AUTH={auth!r}: use one of {', '.join(AUTH_CHOICES)} or set target.oci.auth"],
        )
    return {"config_file": config_file, "profile": profile, "auth": auth}


def shorten(value: Any, limit: int = MAX_SHOWN) -> str:
    """``repr(value)``, cut to about ``limit`` characters (a huge value is not echoed back)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = len(value) if isinstance(value, str | bytes | list | dict) else len(text)
    return f"{text[:limit]}... ({size} characters in all)"


def _check_host(field: str, value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if not HOSTNAME_RE.match(value):
            raise ValueError(
                f"{field}: {shorten(value)} is not a host name or IP address; "
                "give e.g. gpu-1.example.com or 203.0.113.7"
            ) from None
    return value


def _check_user(field: str, value: str) -> str:
    if not USER_RE.match(value):
        raise ValueError(
            f"{field}: {shorten(value)} is not a valid user name; use letters, digits, "
            "'_', '.' and '-', starting with a letter or '_' (e.g. ubuntu)"
        )
    return value


class _JobLoader(yaml.SafeLoader):
    """safe_load without aliases and with bounded nesting: a job file has no use for either,
    and both let a small file expand to gigabytes (the "billion laughs") or overflow the
    stack."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None,
                None,
                f"YAML aliases (*{shorten(event.anchor, 40)[1:-1]}) are not allowed in a job "
                "file; write the value out in full",
                event.start_mark,
            )
        depth = getattr(self, "_fsoci_depth", 0)
        if depth >= MAX_NESTING:
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None,
                None,
                f"nested deeper than {MAX_NESTING} levels; a job file is a few levels deep",
                event.start_mark,
            )
        self._fsoci_depth = depth + 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._fsoci_depth = depth

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        """A key given twice is refused with both lines (PyYAML keeps the last one silently)."""
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _value in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: the base class reports it
                    continue
                line = key_node.start_mark.line + 1
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"duplicate key {shorten(key, 60)} (first on line {first}); "
                        "keep one of them",
                        key_node.start_mark,
                    )
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


Lines = dict[tuple[str | int, ...], int]
"""The job file's line of each field, keyed by its path (``("train", "stop", "iterations")``)."""


def _node_lines(node: Any, path: tuple[str | int, ...] = (), lines: Lines | None = None) -> Lines:
    found: Lines = {} if lines is None else lines
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            here = (*path, key)
            found[here] = key_node.start_mark.line + 1
            _node_lines(value_node, here, found)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found[(*path, i)] = item.start_mark.line + 1
            _node_lines(item, (*path, i), found)
    return found


def line_of(lines: Lines | None, loc: tuple[str | int, ...]) -> int | None:
    """The line of the field at ``loc``, or of its nearest parent the file has."""
    if not lines:
        return None
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _at_line(lines: Lines | None, loc: tuple[str | int, ...], problem: str) -> str:
    line = line_of(lines, loc)
    return f"line {line}: {problem}" if line else problem


def _read_job_text(source: Path, shown: str) -> str:
    try:
        st = source.stat()
    except FileNotFoundError:
        raise SpecError(shown, [f"job file not found (resolved to {source.resolve()})"]) from None
    except OSError as exc:
        raise SpecError(shown, [f"job file cannot be read: {exc.strerror}"]) from None
    if not stat.S_ISREG(st.st_mode):
        raise SpecError(
            shown,
            [f"not a regular file (resolved to {source.resolve()}); give the job's YAML file"],
        )
    try:
        with source.open("rb") as fh:
            raw = fh.read(MAX_JOB_FILE_BYTES + 1)
    except OSError as exc:
        raise SpecError(shown, [f"job file cannot be read: {exc.strerror}"]) from None
    if len(raw) > MAX_JOB_FILE_BYTES:
        raise SpecError(
            shown,
            [f"larger than {MAX_JOB_FILE_BYTES // (1 << 20)} MB; a job file is a few KB of YAML"],
        )
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SpecError(
            shown, ["the file is UTF-16 (it starts with a byte-order mark); save the file as UTF-8"]
        )
    if NUL in raw:
        raise SpecError(
            shown,
            [
                f"byte {raw.index(NUL)}: a NUL byte; this is a binary file, not YAML "
                "(save the file as UTF-8 text)"
            ],
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SpecError(
            shown,
            [
                f"byte {exc.start} (line {line}): not UTF-8 ({raw[exc.start : exc.start + 1]!r}); "
                "save the file as UTF-8"
            ],
        ) from None


def load_job(path: str | os.PathLike[str], *, write: bool = True) -> Job:
    """Read and validate a job file; raise :class:`SpecError` listing every problem, each
    with its line in the file where the file has the field. ``write=False`` (``plan``) writes
    nothing: the demo clips of ``inputs.demo`` are left for ``run`` to make."""
    source = Path(path)
    shown = shorten(str(path))[1:-1]
    text = _read_job_text(source, shown)
    loader = _JobLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        if problem.startswith("duplicate key "):
            raise SpecError(shown, [f"{where}{problem}"]) from None
        raise SpecError(shown, [f"{where}not valid YAML ({shorten(problem)[1:-1]})"]) from None
    except RecursionError:
        raise SpecError(shown, [f"nested deeper than {MAX_NESTING} levels"]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise SpecError(shown, ["the file must hold a mapping (key: value), e.g. `name: demo`"])
    return validate(
        data,
        base_dir=source.resolve().parent,
        source=source,
        shown=shown,
        lines=_node_lines(node),
        write=write,
    )


def validate(
    data: dict[str, Any],
    *,
    base_dir: Path,
    source: Path | None = None,
    shown: str = "<job>",
    lines: Lines | None = None,
    write: bool = True,
) -> Job:
    """Validate an already-parsed spec; relative paths resolve against ``base_dir``.

    Checks shape, ranges and cross-field rules, and the ssh key; what depends on files that
    may not exist yet (inputs, output) is :func:`preflight`'s. ``lines`` (from the file) puts
    each problem's line in front of it; ``write=False`` makes no demo clips."""
    try:
        spec = JobSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(shown, _explain(exc, lines)) from None
    problems: list[str] = []
    if spec.inputs.demo and write:
        _make_demo_inputs(spec.inputs, base_dir, problems)
        problems[:] = [_at_line(lines, ("inputs", "demo"), p) for p in problems]
    if spec.target.kind == "ssh" and spec.target.ssh and spec.target.ssh.key:
        found: list[str] = []
        _check_private_key("target.ssh.key", spec.target.ssh.key, base_dir, found)
        problems += [_at_line(lines, ("target", "ssh", "key"), p) for p in found]
    if problems:
        raise SpecError(shown, problems)
    output_dir = _resolve(spec.output, base_dir)
    return Job(
        spec=spec,
        source=(source or base_dir / "job.yml").resolve(),
        input_a=_resolve(spec.inputs.a, base_dir),
        input_b=_resolve(spec.inputs.b, base_dir),
        output_dir=output_dir,
    )


_PRIVATE_KEY_HEADERS = (
    b"-----BEGIN OPENSSH PRIVATE KEY-----",
    b"-----BEGIN RSA PRIVATE KEY-----",
    b"-----BEGIN EC PRIVATE KEY-----",
    b"-----BEGIN DSA PRIVATE KEY-----",
    b"-----BEGIN PRIVATE KEY-----",
    b"-----BEGIN ENCRYPTED PRIVATE KEY-----",
)
_PUBLIC_KEY_PREFIXES = (
    b"ssh-",
    b"ecdsa-sha2-",
    b"sk-ssh-",
    b"sk-ecdsa-",
    b"---- BEGIN SSH2 PUBLIC",
)


def _check_private_key(field: str, value: str, base_dir: Path, problems: list[str]) -> None:
    """The key is a private key file that ssh will use: ssh refuses one that others can read
    ("UNPROTECTED PRIVATE KEY FILE", ssh(1): "must not be accessible by others")."""
    key = _resolve(value, base_dir)
    where = f"{shorten(value)} (resolved to {key})"
    try:
        st = key.stat()
        if not stat.S_ISREG(st.st_mode):
            raise IsADirectoryError
        with key.open("rb") as fh:
            head = fh.read(64).lstrip()
    except FileNotFoundError:
        problems.append(
            f"{field}: file not found: {where}; give the private key that the host accepts"
        )
        return
    except OSError:
        problems.append(f"{field}: not a readable file: {where}; give the private key file")
        return
    if head.startswith(_PUBLIC_KEY_PREFIXES):
        problems.append(
            f"{field}: {where} is a public key; give the private key (the file without .pub)"
        )
    elif not head.startswith(_PRIVATE_KEY_HEADERS):
        problems.append(f"{field}: {where} is not an SSH private key (no BEGIN ... PRIVATE KEY)")
    elif st.st_mode & 0o077:
        problems.append(
            f"{field}: {where} has mode {stat.S_IMODE(st.st_mode):04o}, readable by others "
            f"(ssh refuses it); run: chmod 600 {key}"
        )


SYSTEM_PATHS = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/sbin", "/sys", "/usr")


def _check_output(value: str, path: Path, problems: list[str]) -> None:
    where = f"{shorten(value)} (resolved to {path})"
    real = Path(os.path.realpath(path))
    if real == Path("/") or any(real == Path(p) or Path(p) in real.parents for p in SYSTEM_PATHS):
        problems.append(f"output: {where} is a system path; give a folder of your own")
        return
    if path.exists() and not path.is_dir():
        problems.append(f"output: {where} is a file, not a folder; give a folder")
        return
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        problems.append(f"output: {where} lies under the file {existing}; give a folder")
    elif not os.access(existing, os.W_OK | os.X_OK):
        problems.append(f"output: {where}: {existing} is not writable; give a folder you can write")


def _check_input(
    field: str,
    value: str,
    path: Path,
    problems: list[str],
    warnings: list[str],
    *,
    must_exist: bool,
) -> None:
    where = f"{shorten(value)} (resolved to {path})"
    try:
        st = path.stat()
    except FileNotFoundError:
        (problems if must_exist else warnings).append(f"{field}: file not found: {where}")
        return
    except OSError as exc:
        problems.append(f"{field}: cannot be read: {where} ({exc.strerror})")
        return
    if stat.S_ISDIR(st.st_mode):
        if not any(p.is_file() for p in path.iterdir()):
            problems.append(f"{field}: {where} is an empty folder; give a video or a frames folder")
        return
    if not stat.S_ISREG(st.st_mode):
        problems.append(f"{field}: {where} is not a regular file (a device or pipe); give a video")
    elif not os.access(path, os.R_OK):
        problems.append(f"{field}: file not readable: {where}; fix its mode")
    elif st.st_size == 0:
        problems.append(f"{field}: file is empty: {where}")
    else:
        trouble = _probe_video(path)
        if trouble:
            problems.append(f"{field}: {where} is not a video ffprobe can read ({trouble})")


def _probe_video(path: Path) -> str | None:
    """None when ffprobe finds a video stream in the file, else why not. Without ffprobe on
    this machine the content is not checked (the host's Faceswap finds out instead)."""
    import shutil
    import subprocess

    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        return None
    try:
        proc = subprocess.run(
            [ffprobe, "-v", "error", "-select_streams", "v", "-show_entries",
             "stream=codec_type", "-of", "csv=p=0", "--", str(path)],
            capture_output=True, text=True, errors="replace", timeout=30, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return "ffprobe took over 30 s"
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["unknown format"])[-1]
        return shorten(first.replace(str(path), "<file>"))[1:-1]
    if "video" not in proc.stdout.split():
        return "no video stream"
    return None


def preflight(job: Job, *, inputs_must_exist: bool = True, check_inputs: bool = True) -> list[str]:
    """What can be checked on this machine before anything runs (``plan`` and the start of
    ``run``): the output folder and the inputs. Raise :class:`SpecError` listing every problem;
    return warnings (``inputs_must_exist=False``: a missing input is one, for ``plan``)."""
    problems: list[str] = []
    warnings: list[str] = []
    _check_output(job.spec.output, job.output_dir, problems)
    if check_inputs:
        for field, value, path in (
            ("inputs.a", job.spec.inputs.a, job.input_a),
            ("inputs.b", job.spec.inputs.b, job.input_b),
        ):
            _check_input(field, value, path, problems, warnings, must_exist=inputs_must_exist)
        try:
            same = job.input_a.exists() and os.path.samefile(job.input_a, job.input_b)
        except OSError:
            same = False
        if same:
            problems.append(
                f"inputs.b: the same file as inputs.a ({job.input_a}); A and B must be two "
                "different people's media"
            )
    if problems:
        raise SpecError(shorten(str(job.source))[1:-1], problems)
    return warnings


def _make_demo_inputs(inputs: Inputs, base_dir: Path, problems: list[str]) -> None:
    a = _resolve(inputs.a, base_dir)
    b = _resolve(inputs.b, base_dir)
    if a.exists() and b.exists():
        return
    if (a.name, b.name) != ("a.mp4", "b.mp4") or a.parent != b.parent:
        problems.append(
            "inputs.demo: the demo clips are written as <folder>/a.mp4 and <folder>/b.mp4; "
            f"set inputs.a and inputs.b so (got {shorten(inputs.a)} and {shorten(inputs.b)})"
        )
        return
    from faceswap_oci import demo  # imported here: numpy/opencv only when clips are made

    try:
        demo.make_demo_inputs(a.parent)
    except (OSError, RuntimeError) as exc:
        problems.append(f"inputs.demo: could not write the demo clips into {a.parent}: {exc}")


def _resolve(value: str, base_dir: Path) -> Path:
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else base_dir / path


def _fields_at(loc: tuple[str | int, ...]) -> list[str]:
    """The field names valid at a location (for 'did you mean')."""
    model: Any = JobSpec
    for part in loc:
        if isinstance(part, int) or model is None:
            return []
        field = model.model_fields.get(part)
        if field is None:
            return []
        model = _model_of(field.annotation)
    return list(model.model_fields) if model is not None else []


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


_RANGE_MSG = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "too_short": "must have at least {min_length} item(s)",
    "string_too_short": "must not be empty",
}


def _explain(exc: ValidationError, lines: Lines | None = None) -> list[str]:
    problems = _explain_fields(exc)
    located: list[str] = []
    for err, problem in zip(exc.errors(include_url=False), problems, strict=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        located.append(_at_line(lines, loc, problem))
    return located + problems[len(located) :]


def _explain_fields(exc: ValidationError) -> list[str]:
    problems: list[str] = []
    errors = exc.errors(include_url=False)
    for err in errors[:MAX_PROBLEMS]:
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        loc = tuple(shorten(p, 60)[1:-1] if isinstance(p, str) else p for p in loc)
        path = ".".join(str(p) for p in loc)
        kind = err["type"]
        ctx = err.get("ctx") or {}
        if kind == "extra_forbidden":
            key = str(loc[-1])
            valid = _fields_at(loc[:-1])
            close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
            hint = f"did you mean `{close[0]}`?" if close else f"valid fields: {', '.join(valid)}"
            problems.append(f"`{path}`: unknown field; {hint}")
        elif kind == "missing":
            problems.append(f"{path}: required field is missing")
        elif kind in _RANGE_MSG:
            got = shorten(err.get("input"))
            problems.append(f"{path}: {_RANGE_MSG[kind].format(**ctx)} (got {got})")
        elif kind == "literal_error":
            expected = ctx.get("expected")
            problems.append(f"{path}: must be one of {expected} (got {shorten(err['input'])})")
        elif kind == "string_pattern_mismatch":
            problems.append(f"{path}: {shorten(err['input'])} {_pattern_hint(loc)}")
        elif kind == "value_error":
            problems.append(str(ctx.get("error", err["msg"])))
        else:
            problems.append(f"{path}: {err['msg'].lower()} (got {shorten(err.get('input'))})")
    if len(errors) > MAX_PROBLEMS:
        problems.append(f"... and {len(errors) - MAX_PROBLEMS} more problem(s)")
    return problems


def _pattern_hint(loc: tuple[str | int, ...]) -> str:
    field = str(loc[-1]) if loc else ""
    if field == "name":
        return (
            "is not a valid job name: use 1-40 of a-z, 0-9 and '-', not starting or ending in '-'"
        )
    if field == "ssh_ingress_cidr":
        return "is not a CIDR: use `auto` or e.g. 203.0.113.7/32"
    return "is not a valid OCID: it looks like ocid1.<type>.oc1..<id>; copy it from the console"


def json_schema() -> dict[str, Any]:
    """JSON Schema of the job file, for editors."""
    schema = JobSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "faceswap-oci job"
    return schema

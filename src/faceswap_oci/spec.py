"""The job spec: one YAML file describes one job.

Parsing and validation only (shape, ranges, cross-field rules, input files). What a role does
with a value is the role's business; a field left ``None`` means "use the role default".
Field names and meanings are documented in ``docs/job-spec.md``.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
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

IniValue = str | int | float | bool
IniSections = dict[str, dict[str, IniValue]]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SshTarget(_Model):
    """An existing host reached over SSH."""

    host: Annotated[str, Field(min_length=1, description="Address or name of the host.")]
    user: str = Field("root", min_length=1, description="SSH login user.")
    port: int = Field(22, ge=1, le=65535, description="SSH port.")
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


AUTH_CHOICES = ("api_key", "security_token", "instance_principal", "resource_principal")


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
    boot_volume_gb: int = Field(200, ge=50, le=32768, description="Boot volume size in GB.")
    ssh_ingress_cidr: str = Field(
        "auto",
        pattern=CIDR_RE,
        description="Who may reach SSH: `auto` (your public address /32) or a CIDR.",
    )
    subnet: str | None = Field(
        None, pattern=OCID_RE, description="Existing subnet OCID; default: a new VCN per job."
    )
    max_hours: float = Field(
        12.0, gt=0, le=168, description="Watchdog: the VM powers itself off after this long."
    )
    service_endpoint: str | None = Field(
        None, description="Override the API endpoint (tests against a local OCI API)."
    )


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
    size: int = Field(512, ge=256, le=1024, description="Extracted face size in pixels.")
    extract_every_n: int = Field(1, ge=1, description="Extract every Nth frame.")
    min_faces: int = Field(25, ge=25, description="Fail when a side has fewer faces.")

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
    iterations: int | None = Field(100_000, gt=0, description="Stop at this cumulative count.")
    hours: float | None = Field(6.0, gt=0, description="Stop after this much training time.")
    plateau_saves: int | None = Field(
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
    batch_size: int = Field(16, ge=1, le=512, description="Batch size (-b).")
    save_every: int = Field(250, ge=1, description="Save the model every N iterations (-s).")
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


class ConvertSpec(_Model):
    writer: Literal["ffmpeg", "gif", "opencv", "patch", "pillow"] = Field(
        "ffmpeg", description="Output writer; only ffmpeg writes a video with audio."
    )
    keep_audio: bool = Field(True, description="Copy the A video's audio into the output.")
    color: ColorAdjust | None = Field(None, description="Colour adjustment plugin.")
    mask_type: str | None = Field(None, description="Mask used to blend the swapped face.")
    config: IniSections = Field(
        default_factory=dict, description="convert.ini overrides: section -> option -> value."
    )

    @model_validator(mode="after")
    def _audio_needs_ffmpeg(self) -> ConvertSpec:
        if self.keep_audio and self.writer != "ffmpeg":
            raise ValueError(
                f"convert.keep_audio needs convert.writer 'ffmpeg' (got {self.writer!r}); "
                "set convert.keep_audio: false or convert.writer: ffmpeg"
            )
        return self


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

    @field_validator("consent")
    @classmethod
    def _consent_is_the_attestation(cls, value: str) -> str:
        if _normalise(value) != _normalise(CONSENT_TEXT):
            raise ValueError(
                f"consent: must be the attestation {CONSENT_TEXT!r} word for word "
                "(see docs/job-spec.md, section Consent)"
            )
        return value


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

    def extravars_spec(self) -> dict[str, Any]:
        """The spec as Ansible sees it (``fsoci``): plain JSON types, absolute paths, and the
        OCI settings the environment decides (``oci_settings``)."""
        data = self.spec.model_dump(mode="json")
        data["inputs"] = {"a": str(self.input_a), "b": str(self.input_b)}
        data["output"] = str(self.output_dir)
        if self.spec.target.oci is not None:
            data["target"]["oci"].update(oci_settings(self.spec.target.oci))
        return data


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


def load_job(path: str | os.PathLike[str]) -> Job:
    """Read and validate a job file; raise :class:`SpecError` listing every problem."""
    source = Path(path)
    shown = str(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(shown, [f"job file not found (resolved to {source.resolve()})"]) from None
    except OSError as exc:
        raise SpecError(shown, [f"job file cannot be read: {exc.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(shown, [f"{where}not valid YAML ({problem})"]) from None
    if not isinstance(data, dict):
        raise SpecError(shown, ["the file must hold a mapping (key: value), e.g. `name: demo`"])
    return validate(data, base_dir=source.resolve().parent, source=source, shown=shown)


def validate(
    data: dict[str, Any],
    *,
    base_dir: Path,
    source: Path | None = None,
    shown: str = "<job>",
) -> Job:
    """Validate an already-parsed spec; relative paths resolve against ``base_dir``."""
    try:
        spec = JobSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(shown, _explain(exc)) from None
    problems: list[str] = []
    if spec.inputs.demo:
        _make_demo_inputs(spec.inputs, base_dir, problems)
    input_a = _check_input("inputs.a", spec.inputs.a, base_dir, problems)
    input_b = _check_input("inputs.b", spec.inputs.b, base_dir, problems)
    if spec.target.kind == "ssh" and spec.target.ssh and spec.target.ssh.key:
        key = Path(os.path.expanduser(spec.target.ssh.key))
        key = key if key.is_absolute() else base_dir / key
        if not key.is_file():
            problems.append(
                f"target.ssh.key: file not found: {spec.target.ssh.key!r} (resolved to {key}); "
                "give the private key that the host accepts"
            )
    if problems:
        raise SpecError(shown, problems)
    output_dir = Path(os.path.expanduser(spec.output))
    output_dir = output_dir if output_dir.is_absolute() else base_dir / output_dir
    return Job(
        spec=spec,
        source=(source or base_dir / "job.yml").resolve(),
        input_a=input_a,
        input_b=input_b,
        output_dir=output_dir,
    )


def _make_demo_inputs(inputs: Inputs, base_dir: Path, problems: list[str]) -> None:
    a = _resolve(inputs.a, base_dir)
    b = _resolve(inputs.b, base_dir)
    if a.exists() and b.exists():
        return
    if (a.name, b.name) != ("a.mp4", "b.mp4") or a.parent != b.parent:
        problems.append(
            "inputs.demo: the demo clips are written as <folder>/a.mp4 and <folder>/b.mp4; "
            f"set inputs.a and inputs.b so (got {inputs.a!r} and {inputs.b!r})"
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


def _check_input(field: str, value: str, base_dir: Path, problems: list[str]) -> Path:
    path = _resolve(value, base_dir)
    if not path.exists():
        problems.append(f"{field}: file not found: {value!r} (resolved to {path})")
    elif not os.access(path, os.R_OK):
        problems.append(f"{field}: file not readable: {value!r} (resolved to {path}); fix its mode")
    elif path.is_file() and path.stat().st_size == 0:
        problems.append(f"{field}: file is empty: {value!r} (resolved to {path})")
    return path


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


def _explain(exc: ValidationError) -> list[str]:
    problems: list[str] = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
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
            problems.append(f"{path}: {_RANGE_MSG[kind].format(**ctx)} (got {err.get('input')!r})")
        elif kind == "literal_error":
            problems.append(f"{path}: must be one of {ctx.get('expected')} (got {err['input']!r})")
        elif kind == "string_pattern_mismatch":
            problems.append(f"{path}: {err['input']!r} {_pattern_hint(loc)}")
        elif kind == "value_error":
            problems.append(str(ctx.get("error", err["msg"])))
        else:
            problems.append(f"{path}: {err['msg'].lower()} (got {err.get('input')!r})")
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

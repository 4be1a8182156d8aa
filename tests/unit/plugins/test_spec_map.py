"""The one declared map from spec fields to role options (plugins/module_utils/spec_map.py).

Every mapped role option is walked: its default, type, choices and range in the role
(``meta/argument_specs.yml``; ranges in the role's ``vars/main.yml``, as argument_specs have no
range keys) agree with the spec field's, and the spec's choices and ranges with Faceswap's own
(``lib/cli/args_*.py`` and its plugin folders at the pinned commit, read from the source cache).
"""

from __future__ import annotations

import math
import re
import types
import typing
from functools import cache
from pathlib import Path
from typing import Any, Literal

import annotated_types
import pytest
import yaml
from ansible_collections.faceswap_oci.core.plugins.module_utils import spec_map
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from faceswap_oci.spec import CONSENT_TEXT, JobSpec
from tests.unit.plugins.pinned_faceswap import faceswap_options, faceswap_plugins
from tests.unit.test_roles import yaml_dicts

ROOT = Path(__file__).resolve().parents[3]
PAIRS = [(entry, option) for entry in spec_map.entries() for option in entry.options]
IDS = [f"{entry.field}->{option}" for entry, option in PAIRS]


@cache
def argument_specs(role: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "roles" / role / "meta/argument_specs.yml").read_text())
    return dict(data["argument_specs"]["main"]["options"])


@cache
def role_ranges(role: str) -> dict[str, list[float | None]]:
    path = ROOT / "roles" / role / "vars/main.yml"
    data = yaml.safe_load(path.read_text()) if path.is_file() else {}
    return dict(data.get(f"_{role}_ranges") or {})


def spec_field(path: str) -> FieldInfo:
    model: type[BaseModel] = JobSpec
    parts = path.split(".")
    for part in parts[:-1]:
        model = _model_in(model.model_fields[part].annotation)
    return model.model_fields[parts[-1]]


def _model_in(annotation: Any) -> type[BaseModel]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    raise AssertionError(f"no model in {annotation}")


def spec_default(info: FieldInfo) -> Any:
    if info.default_factory is not None:
        return info.default_factory()  # type: ignore[call-arg]
    return None if info.default is PydanticUndefined else info.default


def _strip(annotation: Any) -> tuple[Any, bool]:
    """The annotation without Annotated and without None; whether None was allowed."""
    nullable = False
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            nullable = nullable or len(args) < len(typing.get_args(annotation))
            if len(args) > 1:
                return annotation, nullable
            annotation = args[0]
        else:
            return annotation, nullable


def spec_kind(annotation: Any) -> tuple[str, list[Any] | None, str | None]:
    """(argument_specs type, choices, list elements type) of a spec annotation."""
    bare, _ = _strip(annotation)
    origin = typing.get_origin(bare)
    if origin is Literal:
        values = list(typing.get_args(bare))
        return {str: "str", int: "int"}[type(values[0])], values, None
    if origin in (typing.Union, types.UnionType):
        return "raw", None, None
    if origin is list:
        kind, choices, _ = spec_kind(typing.get_args(bare)[0])
        return "list", choices, kind
    if origin is dict:
        return "dict", None, None
    return {bool: "bool", int: "int", float: "float", str: "str"}[bare], None, None


def spec_range(info: FieldInfo) -> tuple[float | None, float | None]:
    low = high = None
    for item in info.metadata:
        if isinstance(item, annotated_types.Ge):
            low = item.ge
        elif isinstance(item, annotated_types.Gt):
            low = item.gt + 1 if isinstance(item.gt, int) else math.nextafter(item.gt, math.inf)
        elif isinstance(item, annotated_types.Le):
            high = item.le
        elif isinstance(item, annotated_types.Lt):
            high = item.lt - 1
    return low, high  # type: ignore[return-value]


def role_value(entry: spec_map.Entry, value: Any) -> Any:
    """The value the role gets for a spec value (the map's own rule, written out here)."""
    if value is None:
        return None if entry.none is spec_map._MISSING else entry.none
    return entry.values[value] if entry.values is not None else value


def test_every_entry_names_a_spec_field_and_declared_options() -> None:
    for entry, option in PAIRS:
        spec_field(entry.field)
        role = spec_map.role_of(option)
        assert option in argument_specs(role), f"{option} is not in {role}'s argument_specs"


@pytest.mark.parametrize(("entry", "option"), PAIRS, ids=IDS)
def test_role_option_agrees_with_the_spec_field(entry: spec_map.Entry, option: str) -> None:
    info = spec_field(entry.field)
    declared = argument_specs(spec_map.role_of(option))[option]
    default = spec_default(info)
    # default: the role's is the spec's (a spec null means "the role's default", STYLE.md §4)
    if default is not None or entry.none is not spec_map._MISSING:
        assert role_value(entry, default) == declared.get("default"), f"{entry.field} default"
    kind, choices, elements = spec_kind(info.annotation)
    if entry.values is not None:
        # a table of values: every spec value lands on a role choice
        assert declared["type"] == "str"
        mapped = sorted({role_value(entry, c) for c in choices or []})
        assert set(mapped) <= set(declared["choices"]), f"{entry.field} -> {mapped}"
        return
    if kind == "int" and declared["type"] == "float":
        kind = "float"
    assert declared["type"] == kind, f"{entry.field} is {kind}, {option} {declared['type']}"
    if elements is not None:
        assert declared.get("elements") == elements, f"{option} elements"
    if choices is not None:
        if spec_default(info) is None and declared.get("default") not in choices:
            # the spec's null is the role's default, one more choice of the role
            choices = [declared.get("default"), *choices]
        assert declared.get("choices") == choices, f"{entry.field} choices"
    else:
        assert "choices" not in declared, f"{option} has choices the spec does not check"
    low, high = spec_range(info)
    ranges = role_ranges(spec_map.role_of(option))
    if low is None and high is None:
        assert option not in ranges, f"{option} has a range the spec does not check"
        return
    assert option in ranges, f"{entry.field} has a range ({low}..{high}) that {option} lacks"
    role_low, role_high = ranges[option]
    # the spec never lets through what the role refuses: its range lies inside the role's
    # (a role may take more, for developers' runs, e.g. a 20 s SSH wait against the OCI double)
    if entry.none is not spec_map._MISSING:
        # the role's lowest value is its encoding of the spec's null (no limit)
        assert role_low == entry.none and (low or 0) > entry.none
    else:
        assert role_low is not None and low is not None and role_low <= low, (
            f"{entry.field} >= {low}, {option} >= {role_low}"
        )
    assert role_high is None or (high is not None and high <= role_high), (
        f"{entry.field} <= {high}, {option} <= {role_high}"
    )


@pytest.mark.parametrize("role", sorted({spec_map.role_of(o) for _, o in PAIRS}))
def test_ranged_options_are_declared_ints_or_floats(role: str) -> None:
    for option in role_ranges(role):
        assert argument_specs(role)[option]["type"] in ("int", "float"), option


@pytest.mark.parametrize(
    ("field", "mapped"),
    [
        ("extract.size", {"faceswap_extract_size": 768}),
        ("train.stop.iterations", {"faceswap_train_iterations": 0}),
        ("faceswap.backend", {"faceswap_train_backend": "nvidia"}),
    ],
)
def test_role_vars_maps_a_set_field(field: str, mapped: dict[str, Any]) -> None:
    value = {"extract.size": 768, "train.stop.iterations": None, "faceswap.backend": "nvidia12"}
    spec: dict[str, Any] = {}
    node = spec
    parts = field.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value[field]
    role = spec_map.role_of(next(iter(mapped)))
    assert spec_map.role_vars(spec, role) == mapped


def test_role_vars_leaves_out_what_the_spec_leaves_out() -> None:
    spec = {"convert": {"color": None, "writer": "ffmpeg"}, "train": {"trainer": "villain"}}
    assert spec_map.role_vars(spec, "faceswap_convert") == {
        "faceswap_convert_writer": "ffmpeg",
        "faceswap_convert_trainer": "villain",
    }
    assert spec_map.role_vars(spec, "faceswap_extract") == {}


def test_role_vars_refuses_a_value_outside_a_table() -> None:
    with pytest.raises(ValueError, match=r"faceswap.backend: 'rocm' is not one of"):
        spec_map.role_vars({"faceswap": {"backend": "rocm"}}, "faceswap_train")


def test_the_full_spec_sets_every_mapped_option() -> None:
    spec = JobSpec.model_validate(
        {
            "name": "x",
            "consent": CONSENT_TEXT,
            "target": {
                "kind": "oci",
                "oci": {"compartment": "ocid1.compartment.oc1..aaaa", "region": "eu-frankfurt-1"},
            },
            "inputs": {"a": "a.mp4", "b": "b.mp4"},
        }
    ).model_dump(mode="json")
    got = {option for role in spec_map.ROLES for option in spec_map.role_vars(spec, role)}
    nullable = {
        o
        for e, o in PAIRS
        if spec_default(spec_field(e.field)) is None
        and not spec_field(e.field).is_required()
        and e.none is spec_map._MISSING
    }
    assert got == {o for _, o in PAIRS} - nullable


# Faceswap's own constraints at the pinned commit.


def faceswap_option(args_file: str, flag: str) -> dict[str, Any]:
    """The option of ``lib/cli/<args_file>`` whose opts hold *flag*."""
    for option in faceswap_options(args_file):
        if flag in option["opts"]:
            return option
    raise AssertionError(f"{flag} not in {args_file} at the pinned commit")


# spec field -> (args file, flag, where Faceswap's choices come from, "file" added)
EC = "args_extract_convert.py"
FACESWAP_OPTIONS: dict[str, tuple[str, str, str | None, list[str]]] = {
    "extract.detector": (EC, "--detector", "plugins/extract/detect", ["file"]),
    "extract.aligner": (EC, "--aligner", "plugins/extract/align", ["file"]),
    "extract.masker": (EC, "--masker", "plugins/extract/mask", []),
    "extract.size": (EC, "--size", None, []),
    "extract.extract_every_n": (EC, "--extract-every-n", None, []),
    "train.trainer": ("args_train.py", "--trainer", "plugins/train/model", []),
    "train.batch_size": ("args_train.py", "--batch-size", None, []),
    "train.save_every": ("args_train.py", "--save-interval", None, []),
    "convert.writer": (EC, "--writer", "plugins/convert/writer", []),
    "convert.color": (EC, "--color-adjustment", "plugins/convert/color", ["none"]),
}
STRICT_RANGE = {"extract.size"}
"""Fields whose spec range is Faceswap's slider range itself. Faceswap's Slider ranges are not
enforced on its command line (lib/cli/actions.py, class Slider: "These min/max values are not
enforced, they are purely for setting the slider range"), so elsewhere only the default is
checked to lie inside it."""


@pytest.mark.parametrize("field", sorted(FACESWAP_OPTIONS))
def test_spec_field_agrees_with_faceswap(field: str) -> None:
    args_file, flag, plugins, more = FACESWAP_OPTIONS[field]
    info = spec_field(field)
    _, choices, _ = spec_kind(info.annotation)
    option = faceswap_option(args_file, flag)
    if plugins is not None:
        accepted = set(faceswap_plugins(plugins)) | set(more)
        assert choices is not None and set(choices) <= accepted, (
            f"{field} allows {sorted(set(choices or []) - accepted)}, refused by Faceswap's {flag}"
        )
        return
    default = spec_default(info)
    low, high = option["min_max"]
    assert option["default"] == default, f"{field}: Faceswap's {flag} default differs"
    assert low <= default <= high
    if field in STRICT_RANGE:
        assert spec_range(info) == (low, high), f"{field}: Faceswap's {flag} range is {low}..{high}"


def _asserts(tree: Any) -> list[list[str]]:
    found: list[list[str]] = []
    for node in yaml_dicts(tree):
        body = node.get("ansible.builtin.assert")
        if isinstance(body, dict):
            that = body.get("that") or []
            found.append([that] if isinstance(that, str) else list(that))
    return found


@pytest.mark.parametrize("role", sorted({spec_map.role_of(o) for _, o in PAIRS}))
def test_no_preflight_narrows_a_mapped_option_alone(role: str) -> None:
    """A rule on one mapped option alone is its choices or range (above, checked against the
    spec); an assert in the role's tasks would refuse, after hours of work, what the spec let
    through. Rules across options (the `file` detector and aligner pair) stay in preflight."""
    mapped = {o for _, o in PAIRS if spec_map.role_of(o) == role}
    # a value rule (an option's size, `| length`, is not one argument_specs could hold)
    compare = r"\s*(\|\s*(int|float|string|trim)\s*)*(==|!=|>=|<=|>|<|in\b|not\s+in\b)"
    offending = []
    for tasks in sorted((ROOT / "roles" / role / "tasks").glob("*.yml")):
        for that in _asserts(yaml.safe_load(tasks.read_text())):
            for expression in that:
                if " is match(" in expression:
                    # a pattern: argument_specs cannot hold one; the spec checks its own
                    continue
                named = {o for o in mapped if re.search(rf"\b{o}\b", expression)}
                if len(named) == 1 and re.search(rf"\b{next(iter(named))}\b{compare}", expression):
                    offending.append(f"{tasks.name}: {expression}")
    assert offending == []


def test_the_backend_values_are_faceswaps_names_in_the_backend_table() -> None:
    from ansible_collections.faceswap_oci.core.plugins.module_utils import gpu_table

    (entry,) = [e for e in spec_map.entries() if e.field == "faceswap.backend"]
    assert entry.values is not None
    assert dict(entry.values) == {
        "auto": "",
        **{name: gpu_table.BACKENDS[name].faceswap for name in ("cpu", "nvidia13", "nvidia12")},
    }

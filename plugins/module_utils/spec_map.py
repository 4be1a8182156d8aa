"""The one declared map from job-spec fields to role options (``playbooks/vars/spec_map.yml``).

Each entry names a field of the job spec (``fsoci``, the validated spec as the runner passes it,
docs/contracts.md) by its dotted path and the role options it feeds. The phase playbooks turn
``fsoci`` into their role's options with the ``faceswap_oci.core.role_vars`` filter, so no
playbook restates a default: a field the job leaves out (or sets to ``null``) is not passed and
the role's own default (its ``meta/argument_specs.yml``) applies, unless the entry says what
``null`` means for the role (``none``: the stop criteria's "no limit" is the role's 0).

``tests/unit/plugins/test_spec_map.py`` walks every entry: the spec field's default, type,
choices and range agree with the role option's, and with Faceswap's own where it declares one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

_MISSING = object()


@dataclass(frozen=True)
class Entry:
    """One spec field and the role options it feeds."""

    field: str
    options: tuple[str, ...]
    none: Any = _MISSING
    """What the role takes for the field's ``null`` (left out: ``null`` passes nothing)."""
    values: Mapping[str, Any] | None = None
    """A table from the spec's values to the role's (e.g. the backend flavours)."""


MAP_FILE = Path(__file__).resolve().parents[2] / "playbooks" / "vars" / "spec_map.yml"
"""The map itself: data, beside the playbooks that use it (the collection's root is two folders
up, in a checkout and in the wheel alike)."""

ROLES: tuple[str, ...] = (
    "faceswap",
    "faceswap_extract",
    "faceswap_train",
    "faceswap_convert",
    "oci_network",
    "oci_instance",
    "oci_teardown",
    "oci_storage",
)
"""The roles the map feeds."""


def _entry(field: str, spec: Any) -> Entry:
    if isinstance(spec, list):
        return Entry(field, tuple(str(o) for o in spec))
    return Entry(
        field,
        tuple(str(o) for o in spec["options"]),
        none=spec.get("none", _MISSING),
        values=spec.get("values"),
    )


@cache
def entries(path: Path = MAP_FILE) -> tuple[Entry, ...]:
    """The map's entries (read on first use: PyYAML is the controller's, not a host's)."""
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return tuple(_entry(str(field), spec) for field, spec in data["spec_map"].items())


def role_of(option: str) -> str:
    """The role an option belongs to: the longest role name that prefixes it."""
    roles = [role for role in ROLES if option.startswith(f"{role}_")]
    if not roles:
        raise ValueError(f"{option}: no role of {ROLES} has this prefix")
    return max(roles, key=len)


def lookup(spec: Mapping[str, Any], field: str) -> Any:
    """The value at a dotted path of the spec; ``_MISSING`` when a part is absent."""
    node: Any = spec
    for part in field.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def role_vars(spec: Mapping[str, Any], role: str) -> dict[str, Any]:
    """The options of *role* (its name, e.g. ``faceswap_train``) that the spec sets."""
    if not isinstance(spec, Mapping):
        raise ValueError(f"the job spec (fsoci) must be a mapping, got {type(spec).__name__}")
    if role not in ROLES:
        raise ValueError(f"{role!r} is not one of {ROLES}")
    found: dict[str, Any] = {}
    for entry in entries():
        value = lookup(spec, entry.field)
        if value is None:
            value = entry.none
        if value is _MISSING:
            continue
        if entry.values is not None:
            if value not in entry.values:
                raise ValueError(
                    f"{entry.field}: {value!r} is not one of {sorted(entry.values)}; "
                    "fix the job file (docs/job-spec.md)"
                )
            value = entry.values[value]
        for option in entry.options:
            if role_of(option) == role:
                found[option] = value
    return found

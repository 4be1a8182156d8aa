"""The events roles send: one frozen dataclass per ``fsoci_event`` kind.

A role reports a fact with ``ansible.builtin.debug: msg: {fsoci_event: {kind: <kind>, ...}}``
(docs/contracts.md); the wrapper turns it into a :class:`faceswap_oci.events.Report` whose
``typed`` is the dataclass registered here for that kind. The kinds and their fields are one
table, ``data/role_events.yml``; ``tests/unit/test_role_events.py`` walks every ``fsoci_event`` in
``roles/`` and ``playbooks/``: each kind is registered, each message's keys are its dataclass's
fields (the required ones all there), and each registered kind is sent somewhere, so renaming a
key on one side fails a test instead of the Python silently reading ``None``. Values arrive as
the role rendered them (JSON types).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from importlib import resources
from typing import Any, ClassVar

import yaml


@dataclass(frozen=True)
class RoleEvent:
    """Base of the typed role events; ``KIND`` is the ``fsoci_event.kind`` it stands for."""

    KIND: ClassVar[str] = ""


def _load() -> dict[str, type[RoleEvent]]:
    text = resources.files("faceswap_oci").joinpath("data/role_events.yml").read_text("utf-8")
    registry: dict[str, type[RoleEvent]] = {}
    for kind, spec in yaml.safe_load(text)["role_events"].items():
        fields: list[Any] = [(name, Any) for name in spec["fields"]]
        fields += [
            (name, Any, dataclasses.field(default=None)) for name in spec.get("optional", [])
        ]
        cls = dataclasses.make_dataclass(
            spec["class"], fields, bases=(RoleEvent,), frozen=True, namespace={"KIND": kind}
        )
        cls.__module__ = __name__
        registry[kind] = cls
    return registry


REGISTRY: dict[str, type[RoleEvent]] = _load()


def fields_of(kind: str) -> tuple[set[str], set[str]]:
    """(every field, the required fields) of a registered kind."""
    found = dataclasses.fields(REGISTRY[kind])
    required = {f.name for f in found if f.default is dataclasses.MISSING}
    return {f.name for f in found}, required


def parse(kind: str, data: dict[str, Any]) -> RoleEvent | None:
    """The typed event of a report; None for a kind not registered or a message without its
    required fields (the wrapper then keeps the plain Report, never raises)."""
    cls = REGISTRY.get(kind)
    if cls is None:
        return None
    names, required = fields_of(kind)
    if not required <= set(data):
        return None
    return cls(**{k: v for k, v in data.items() if k in names})

"""Every event a role (or playbook) sends is registered with its own dataclass, and the keys
agree on both sides (faceswap_oci.role_events)."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from faceswap_oci import events as ev
from faceswap_oci import role_events

ROOT = Path(__file__).resolve().parents[2]


def _sent(node: Any, where: str, found: list[tuple[str, str, set[str]]]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "fsoci_event" and isinstance(value, str):
                # built in Jinja: {{ {'kind': 'upload'} | combine(<a module's result>) }}
                kind = re.search(r"'kind': '(\w+)'", value)
                assert kind, f"{where}: a templated fsoci_event names no kind"
                found.append((where, kind.group(1), set()))
            elif key == "fsoci_event":
                assert isinstance(value, dict), f"{where}: fsoci_event is not a mapping"
                found.append((where, str(value.get("kind")), set(value) - {"kind"}))
            else:
                _sent(value, where, found)
    elif isinstance(node, list):
        for item in node:
            _sent(item, where, found)


def sent_events() -> list[tuple[str, str, set[str]]]:
    found: list[tuple[str, str, set[str]]] = []
    for path in sorted([*(ROOT / "roles").rglob("*.yml"), *(ROOT / "playbooks").rglob("*.yml")]):
        _sent(yaml.safe_load(path.read_text()), str(path.relative_to(ROOT)), found)
    return found


SENT = sent_events()


def test_roles_send_events() -> None:
    assert len(SENT) >= 17
    # every fsoci_event the tree mentions is in a message the walker found
    mentions = sum(
        p.read_text().count("fsoci_event:")
        for p in [*(ROOT / "roles").rglob("*.yml"), *(ROOT / "playbooks").rglob("*.yml")]
    )
    assert mentions == len(SENT)


@pytest.mark.parametrize(("where", "kind", "keys"), SENT, ids=[f"{w}:{k}" for w, k, _ in SENT])
def test_every_sent_event_is_registered_with_its_keys(
    where: str, kind: str, keys: set[str]
) -> None:
    assert kind in role_events.REGISTRY, f"{where}: kind {kind!r} is not in role_events.REGISTRY"
    fields, required = role_events.fields_of(kind)
    if kind == "upload":  # its keys are media_push's `upload` result
        keys = media_push_upload_keys()
    assert keys - fields == set(), f"{where}: {kind} sends keys its dataclass lacks"
    assert required - keys == set(), f"{where}: {kind} leaves out required fields"


def media_push_upload_keys() -> set[str]:
    tree = ast.parse((ROOT / "plugins/action/media_push.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "upload":
            assert isinstance(node.value, ast.Dict)
            return {k.value for k in node.value.keys if isinstance(k, ast.Constant)}
    raise AssertionError("media_push returns no `upload`")


def test_every_registered_kind_is_sent() -> None:
    assert set(role_events.REGISTRY) == {kind for _, kind, _ in SENT}


def test_a_report_from_the_runner_is_typed() -> None:
    raw = {
        "event": "runner_on_ok",
        "event_data": {
            "task": "Report the faces",
            "host": "target",
            "res": {"msg": {"fsoci_event": {"kind": "faces", "side": "a", "count": 30,
                                            "min": 25, "extracted": True}}},
        },
    }  # fmt: skip
    reports = [e for e in ev.from_runner("extract", raw) if isinstance(e, ev.Report)]
    typed = [r.typed for r in reports]
    assert typed == [role_events.REGISTRY["faces"](side="a", count=30, min=25, extracted=True)]
    assert type(typed[0]).__name__ == "Faces" and typed[0].KIND == "faces"


def test_an_unknown_or_incomplete_report_stays_a_plain_report() -> None:
    assert ev.Report("x", report="cost", data={"total_usd": 1}).typed is None
    assert ev.Report("x", report="faces", data={"side": "a"}).typed is None

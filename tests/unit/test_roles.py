"""Role conventions (STYLE.md §2): every default is declared in meta/argument_specs.yml with a
type and a description, defaults carry the role's prefix, and playbooks only set declared
options."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p.parent.parent.name for p in (ROOT / "roles").glob("*/meta/argument_specs.yml"))


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text()) if path.is_file() else None


def options(role: str) -> dict[str, Any]:
    spec = load(ROOT / "roles" / role / "meta" / "argument_specs.yml")
    return dict(spec["argument_specs"]["main"].get("options") or {})


def test_every_role_has_argument_specs() -> None:
    with_tasks = sorted(p.parent.parent.name for p in (ROOT / "roles").glob("*/tasks/main.yml"))
    assert with_tasks == ROLES


@pytest.mark.parametrize("role", ROLES)
def test_defaults_and_argument_specs_have_the_same_keys(role: str) -> None:
    defaults = load(ROOT / "roles" / role / "defaults" / "main.yml") or {}
    assert set(defaults) == set(options(role))
    # a required option has no default in argument_specs (Ansible refuses both)
    differ = {
        k: (v, options(role)[k].get("default"))
        for k, v in defaults.items()
        if not options(role)[k].get("required")
    }
    assert {k: pair for k, pair in differ.items() if pair[0] != pair[1]} == {}


@pytest.mark.parametrize("role", ROLES)
def test_options_are_prefixed_typed_and_described(role: str) -> None:
    for name, option in options(role).items():
        assert name.startswith(f"{role}_"), name
        assert option.get("type"), f"{role}: {name} has no type"
        assert option.get("description"), f"{role}: {name} has no description"


def yaml_dicts(node: Any) -> Iterator[dict[str, Any]]:
    """Every mapping of a parsed YAML tree (a play, a task file), outermost first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from yaml_dicts(value)
    elif isinstance(node, list):
        for item in node:
            yield from yaml_dicts(item)


def _role_uses(tree: Any) -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for node in yaml_dicts(tree):
        role = node.get("role")
        for action in ("ansible.builtin.include_role", "ansible.builtin.import_role"):
            role = role or (node.get(action) or {}).get("name")
        if isinstance(role, str) and role.startswith("faceswap_oci.core."):
            found.append((role.rsplit(".", 1)[1], dict(node.get("vars") or {})))
    return found


PLAYBOOK_USES = [
    (playbook.name, role, variables)
    for playbook in sorted((ROOT / "playbooks").glob("*.yml"))
    for role, variables in _role_uses(load(playbook))
]


@pytest.mark.parametrize(
    ("playbook", "role", "variables"),
    PLAYBOOK_USES,
    ids=[f"{p}:{r}" for p, r, _ in PLAYBOOK_USES],
)
def test_playbooks_set_only_declared_role_options(
    playbook: str, role: str, variables: dict[str, Any]
) -> None:
    undeclared = sorted(set(variables) - set(options(role)))
    assert undeclared == [], f"{playbook} sets {undeclared} not in {role}'s argument_specs"
    # a role option that a spec field feeds is set by the one declared map (the role_vars
    # filter, plugins/module_utils/spec_map.py), never restated in a playbook
    sys.path.insert(0, str(ROOT / ".collections"))
    from ansible_collections.faceswap_oci.core.plugins.module_utils import spec_map

    mapped = {option for entry in spec_map.entries() for option in entry.options}
    assert sorted(set(variables) & mapped) == [], f"{playbook} restates mapped options"


def test_playbooks_reach_every_phase_role() -> None:
    used = {role for _, role, _ in PLAYBOOK_USES}
    assert {"faceswap_extract", "faceswap_train", "faceswap_convert", "faceswap"} <= used

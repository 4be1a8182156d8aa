# Copyright: faceswap-oci developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Can a detached job's instance end its own billing? The dynamic group and policy it needs,
and a read-only check of them through the Identity API, before any instance exists.

A detached job's agent terminates its own instance (boot volume included) with its instance
principal (docs/detach.md). The real service offers no call that says "would this instance be
allowed to TerminateInstance": authorization is decided per request, and the instance does
not exist yet. What the controller can read, and this module reads, is IAM's own data:

- ``IdentityClient.list_dynamic_groups(tenancy)``: a dynamic group whose matching rule takes
  any instance launched in the job's compartment (``instance.compartment.id``, and
  ``tag.<ns>.<key>.value`` from ``target.oci.defined_tags``; a rule that names single
  instances by ``instance.id`` can never take a new one);
- ``IdentityClient.list_policies`` of the compartment and each ancestor up to the tenancy
  (``get_compartment`` for the chain): statements that let that group ``manage``
  ``instance-family`` (TerminateInstance) and ``volume-family`` (its boot volume) in the
  compartment, by id or by name, or in the tenancy.

What it cannot see: conditions (``where ...``) are not evaluated (a statement with one is
reported); dynamic groups of an identity domain (tenancies with identity domains keep them in
the domain, read with the Identity Domains API, not ``list_dynamic_groups``); deny statements
and tag-based access; and IAM's propagation delay after a change. Reading IAM needs
``inspect dynamic-groups`` and ``inspect policies`` in the tenancy; without them the verdict
is "unknown", never "ok".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ansible_collections.faceswap_oci.core.plugins.module_utils.oci_common import (
    HAS_OCI,
    ConfigProblems,
    clients_from_params,
    error_text,
)

if HAS_OCI:
    import oci

GROUP: Final = "fsoci-detached"
"""The dynamic group name the docs and the refusal suggest."""
FAMILIES: Final = ("instance-family", "volume-family")
"""What TerminateInstance with ``preserve_boot_volume=False`` needs: the instance and its boot
volume (Oracle's "Details for the Core Services" lists TerminateInstance under instances and
the boot volume's deletion under volumes)."""


@dataclass(frozen=True)
class PolicyText:
    """What to create: one dynamic group (its matching rule) and the policy statements."""

    group: str
    matching_rule: str
    statements: tuple[str, ...]

    def render(self) -> str:
        lines = [
            f"dynamic group {self.group} (Identity > Dynamic groups), matching rule:",
            f"  {self.matching_rule}",
            "policy (Identity > Policies, in the tenancy or the compartment's parent):",
            *(f"  {s}" for s in self.statements),
        ]
        return "\n".join(lines)


def policy_text(compartment: str, group: str = GROUP) -> PolicyText:
    """The least privilege a detached job needs: its compartment's instances may delete
    instances and volumes there, nothing else (no network, no storage: the bucket is written
    with the job's PAR)."""
    return PolicyText(
        group,
        f"instance.compartment.id = '{compartment}'",
        tuple(
            f"Allow dynamic-group {group} to manage {family} in compartment id {compartment}"
            for family in FAMILIES
        ),
    )


@dataclass(frozen=True)
class Verdict:
    """``ok`` (the group and every statement found), ``missing`` (read, not there) or
    ``unknown`` (IAM could not be read); ``detail`` says what was found, ``fix`` what to do."""

    level: str
    detail: str
    fix: str = ""
    groups: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.level == "ok"


_CONDITION: Final = re.compile(
    r"^(?P<var>instance\.id|instance\.compartment\.id|tag\.[^.\s]+\.[^.\s]+\.value)\s*"
    r"(?P<op>!=|=)\s*'(?P<value>[^']*)'$"
)
_STATEMENT: Final = re.compile(
    r"^allow\s+dynamic-group\s+(?P<groups>[\w.,\s-]+?)\s+to\s+(?P<verb>\w+)\s+(?P<what>[\w-]+)\s+"
    r"in\s+(?P<where>tenancy|compartment\s+id\s+\S+|compartment\s+[\w.:-]+)"
    r"(?P<cond>\s+where\s+.+)?$",
    re.IGNORECASE,
)


def takes_new_instances(
    rule: str, compartment: str, defined_tags: Mapping[str, Mapping[str, str]]
) -> bool:
    """Whether a matching rule takes every new instance of ``compartment`` carrying
    ``defined_tags``. ``instance.id = '...'`` names one existing instance, so it cannot;
    ``instance.id != '...'`` excludes one, which a new instance is not."""

    def holds(condition: str) -> bool:
        m = _CONDITION.match(condition.strip())
        if m is None:
            return False
        var, equal, value = m["var"], m["op"] == "=", m["value"]
        if var == "instance.id":
            return not equal
        if var == "instance.compartment.id":
            actual: str | None = compartment
        else:
            _tag, ns, key, _value = var.split(".")
            actual = (defined_tags.get(ns) or {}).get(key)
        return (actual == value) == equal

    text = rule.strip()
    m = re.match(r"^(any|all)\s*\{(.*)\}$", text, re.IGNORECASE | re.DOTALL)
    if m is None:
        return holds(text)
    conditions = [c for c in m[2].split(",") if c.strip()]
    if not conditions:
        return False
    results = [holds(c) for c in conditions]
    return any(results) if m[1].lower() == "any" else all(results)


def grants(statement: str, groups: set[str], family: str, scopes: set[str]) -> tuple[bool, bool]:
    """(grants, has a condition): does ``statement`` let one of ``groups`` manage ``family``
    in one of ``scopes`` (``tenancy``, ``compartment id <ocid>``, ``compartment <name>``, as
    written where the policy is attached)?"""
    m = _STATEMENT.match(" ".join(statement.split()))
    if m is None:
        return False, False
    named = {g.strip().lower() for g in m["groups"].split(",")}
    if not named & groups or m["verb"].lower() != "manage":
        return False, False
    if m["what"].lower() not in (family, "all-resources"):
        return False, False
    where = " ".join(m["where"].split())
    if where.lower() not in {s.lower() for s in scopes}:
        return False, False
    return True, bool(m["cond"])


def _all(call: Any, *args: Any, **kwargs: Any) -> list[Any]:
    return list(
        oci.pagination.list_call_get_all_results(
            call, *args, retry_strategy=oci.retry.DEFAULT_RETRY_STRATEGY, **kwargs
        ).data
    )


def check_policy(
    params: Mapping[str, Any], defined_tags: Mapping[str, Mapping[str, str]] | None = None
) -> Verdict:
    """The verdict for a detached job in ``params['compartment_id']`` (the shared module
    options, as ``oci_preflight`` takes them). Read-only: lists and gets, nothing else."""
    compartment = str(params["compartment_id"])
    want = policy_text(compartment)
    fix_text = f"create them:\n{want.render()}"
    try:
        config, identity = clients_from_params(params, oci.identity.IdentityClient)
    except ConfigProblems as exc:
        return Verdict("unknown", "; ".join(p.problem for p in exc.problems), fix_text)
    tenancy = str(config.get("tenancy") or "")
    read_fix = (
        "let your group read IAM (Allow group <yours> to inspect dynamic-groups in tenancy; "
        f"Allow group <yours> to inspect policies in tenancy), or {fix_text}"
    )
    try:
        groups = _all(identity.list_dynamic_groups, tenancy)
    except Exception as exc:
        return Verdict("unknown", f"ListDynamicGroups in {tenancy}: {error_text(exc)}", read_fix)
    taking = {
        g.name.lower()
        for g in groups
        if g.lifecycle_state in (None, "ACTIVE")
        and takes_new_instances(g.matching_rule or "", compartment, defined_tags or {})
    }
    if not taking:
        return Verdict(
            "missing",
            f"no dynamic group of tenancy {tenancy} takes new instances of compartment "
            f"{compartment} ({len(groups)} dynamic group(s) read)",
            fix_text,
        )
    # the compartment and its ancestors, each with the names a statement there may use
    chain: list[str] = []  # the compartment, then its parent, ... (the tenancy left out)
    current, name_path = compartment, list[str]()
    try:
        while current and current != tenancy and len(chain) < 7:
            found = identity.get_compartment(
                current, retry_strategy=oci.retry.DEFAULT_RETRY_STRATEGY
            ).data
            name_path.insert(0, found.name)
            chain.append(current)
            current = found.compartment_id
    except Exception as exc:
        return Verdict("unknown", f"GetCompartment {current}: {error_text(exc)}", read_fix)
    # A policy attached to an ancestor (or the compartment itself) may name the job's
    # compartment by id, or by its path of names below where it is attached ("in compartment
    # a:b"; attached to the compartment itself, by its own name); in the tenancy also "in
    # tenancy" (Oracle's "Policy Syntax", the location part).
    by_id = f"compartment id {compartment}"
    attached: list[tuple[str, set[str]]] = []
    for depth, cid in enumerate(chain):
        below = name_path[len(name_path) - depth :] if depth else name_path[-1:]
        attached.append((cid, {by_id, "compartment " + ":".join(below)}))
    attached.append((tenancy, {by_id, "tenancy", "compartment " + ":".join(name_path)}))
    missing = set(FAMILIES)
    notes: list[str] = []
    for cid, scopes in attached:
        try:
            policies = _all(identity.list_policies, cid)
        except Exception as exc:
            return Verdict("unknown", f"ListPolicies in {cid}: {error_text(exc)}", read_fix)
        for policy in policies:
            for statement in policy.statements or []:
                for family in FAMILIES:
                    ok, conditional = grants(statement, taking, family, scopes)
                    if ok:
                        missing.discard(family)
                        if conditional:
                            notes.append(
                                f"policy {policy.name}: a condition is not evaluated: {statement}"
                            )
    names = tuple(sorted(taking))
    if missing:
        return Verdict(
            "missing",
            f"dynamic group(s) {', '.join(names)} found, but no policy lets them manage "
            f"{' and '.join(sorted(missing))} in compartment {compartment}",
            fix_text,
            names,
        )
    return Verdict(
        "ok",
        f"dynamic group(s) {', '.join(names)} may terminate instances and their boot volumes "
        f"in compartment {compartment}",
        groups=names,
        notes=tuple(notes),
    )

# Copyright: faceswap-oci developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A job's network (VCN, internet gateway, route table, security list, public subnet) and the
finding and removal of everything a job owns, by its freeform tag.

Plain functions over SDK clients; the modules only map options to arguments.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from ansible_collections.faceswap_oci.core.plugins.module_utils.oci_common import (
    HAS_OCI,
    JOB_TAG,
    JobResourceSpec,
    delete_retry_strategy,
    is_live,
    list_all,
    settled,
    tagged_live,
    wait_for,
)

if HAS_OCI:
    import oci
    from oci.core import models as M

ANY: Final = "0.0.0.0/0"
SSH_PORT: Final = 22
# Deletion order: what depends on something is deleted before it (the service answers 409).
NETWORK_ORDER: Final = ("subnet", "route_table", "security_list", "internet_gateway", "vcn")
# Display names: fsoci-<job> for the VCN, fsoci-<job>-<suffix> for what is in it.
SUFFIXES: Final = {
    "internet_gateway": "igw",
    "route_table": "rt",
    "security_list": "sl",
    "subnet": "subnet",
}


@dataclass(frozen=True)
class NetworkSpec(JobResourceSpec):
    ssh_ingress_cidr: str
    vcn_cidr: str = "10.0.0.0/16"
    subnet_cidr: str = "10.0.0.0/24"
    dns_label: str | None = None
    defined_tags: dict[str, dict[str, Any]] | None = None


@dataclass
class NetworkResult:
    changed: bool = False
    created: list[dict[str, str]] = field(default_factory=list)
    updated: list[dict[str, str]] = field(default_factory=list)
    ids: dict[str, str | None] = field(default_factory=dict)


def ssh_ingress_rule(cidr: str) -> Any:
    return M.IngressSecurityRule(
        protocol="6",
        source=cidr,
        source_type="CIDR_BLOCK",
        is_stateless=False,
        tcp_options=M.TcpOptions(destination_port_range=M.PortRange(min=SSH_PORT, max=SSH_PORT)),
        description="SSH from the faceswap-oci controller",
    )


def egress_all_rule() -> Any:
    return M.EgressSecurityRule(
        protocol="all", destination=ANY, destination_type="CIDR_BLOCK", is_stateless=False
    )


def _rule_key(rule: Any) -> tuple[Any, ...]:
    tcp = getattr(rule, "tcp_options", None)
    ports = None
    if tcp is not None and tcp.destination_port_range is not None:
        ports = (tcp.destination_port_range.min, tcp.destination_port_range.max)
    peer = getattr(rule, "source", None) or getattr(rule, "destination", None)
    return (rule.protocol, peer, ports)


def security_rules_match(sl: Any, cidr: str) -> bool:
    ingress = sorted(_rule_key(r) for r in sl.ingress_security_rules or [])
    egress = sorted(_rule_key(r) for r in sl.egress_security_rules or [])
    return ingress == [_rule_key(ssh_ingress_rule(cidr))] and egress == [
        _rule_key(egress_all_rule())
    ]


def route_rules_match(rt: Any, igw_id: str) -> bool:
    return [(r.destination, r.network_entity_id) for r in rt.route_rules or []] == [(ANY, igw_id)]


def route_rule(igw_id: str) -> Any:
    return M.RouteRule(destination=ANY, destination_type="CIDR_BLOCK", network_entity_id=igw_id)


def ensure_network(
    vn: Any, spec: NetworkSpec, *, check_mode: bool, wait: bool, wait_timeout: int
) -> NetworkResult:
    """Create what is missing of the job's network; a second call changes nothing."""
    res = NetworkResult()
    comp, job = spec.compartment_id, spec.job

    def settle(get: Callable[..., Any], model: Any) -> Any:
        if not wait:
            return model
        return settled(vn, get, model, "AVAILABLE", wait_timeout, fail_states=["TERMINATED"])

    def created(kind: str, model: Any | None) -> None:
        res.changed = True
        res.created.append({"kind": kind, "id": model.id if model is not None else "(check mode)"})

    vcns = tagged_live(list_all(vn.list_vcns, comp), job)
    vcn = vcns[0] if vcns else None
    if vcn is None:
        if check_mode:
            for kind in reversed(NETWORK_ORDER):
                created(kind, None)
            res.ids = dict.fromkeys(NETWORK_ORDER)
            return res
        vcn = vn.create_vcn(
            M.CreateVcnDetails(
                compartment_id=comp,
                cidr_blocks=[spec.vcn_cidr],
                display_name=f"fsoci-{job}",
                dns_label=spec.dns_label,
                freeform_tags=spec.tags,
                defined_tags=spec.defined_tags or None,
            )
        ).data
        created("vcn", vcn)
    vcn = settle(vn.get_vcn, vcn)
    res.ids["vcn"] = vcn.id

    def ensure(
        kind: str,
        list_fn: Callable[..., Any],
        create: Callable[..., Any],
        get: Callable[..., Any],
        details: Callable[[dict[str, Any]], Any],
    ) -> tuple[Any, bool]:
        """(the job's resource of ``kind`` in the VCN, whether it was there): found by tag,
        else created from ``details(common fields)`` and settled; None in check mode."""
        found = tagged_live(list_all(list_fn, comp, vcn_id=vcn.id), job)
        if found:
            model = found[0]
        elif check_mode:
            model = None
            created(kind, None)
        else:
            common = {
                "compartment_id": comp,
                "vcn_id": vcn.id,
                "display_name": f"fsoci-{job}-{SUFFIXES[kind]}",
                "freeform_tags": spec.tags,
                "defined_tags": spec.defined_tags or None,
            }
            model = create(details(common)).data
            created(kind, model)
            model = settle(get, model)
        res.ids[kind] = model.id if model is not None else None
        return model, bool(found)

    def update(kind: str, model: Any, call: Callable[[], Any]) -> Any:
        res.changed = True
        res.updated.append({"kind": kind, "id": model.id})
        return model if check_mode else call().data

    # Outside check mode every resource exists once ensure returns, so the later details
    # (called only to create) may read the earlier ones' ids.
    igw, _ = ensure(
        "internet_gateway",
        vn.list_internet_gateways,
        vn.create_internet_gateway,
        vn.get_internet_gateway,
        lambda c: M.CreateInternetGatewayDetails(is_enabled=True, **c),
    )
    rt, had_rt = ensure(
        "route_table",
        vn.list_route_tables,
        vn.create_route_table,
        vn.get_route_table,
        lambda c: M.CreateRouteTableDetails(route_rules=[route_rule(igw.id)], **c),
    )
    if had_rt and igw is not None and not route_rules_match(rt, igw.id):
        rt = update(
            "route_table",
            rt,
            lambda: vn.update_route_table(
                rt.id, M.UpdateRouteTableDetails(route_rules=[route_rule(igw.id)])
            ),
        )
    rules = {
        "ingress_security_rules": [ssh_ingress_rule(spec.ssh_ingress_cidr)],
        "egress_security_rules": [egress_all_rule()],
    }
    sl, had_sl = ensure(
        "security_list",
        vn.list_security_lists,
        vn.create_security_list,
        vn.get_security_list,
        lambda c: M.CreateSecurityListDetails(**rules, **c),
    )
    if had_sl and not security_rules_match(sl, spec.ssh_ingress_cidr):
        sl = update(
            "security_list",
            sl,
            lambda: vn.update_security_list(sl.id, M.UpdateSecurityListDetails(**rules)),
        )
    ensure(
        "subnet",
        vn.list_subnets,
        vn.create_subnet,
        vn.get_subnet,
        lambda c: M.CreateSubnetDetails(
            cidr_block=spec.subnet_cidr,
            route_table_id=rt.id,
            security_list_ids=[sl.id],
            prohibit_public_ip_on_vnic=False,
            **c,
        ),
    )
    return res


# --- finding and removing by tag ----------------------------------------------------------------


@dataclass(frozen=True)
class Owned:
    kind: str
    id: str
    display_name: str | None
    lifecycle_state: str
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "display_name": self.display_name,
            "lifecycle_state": self.lifecycle_state,
            **self.extra,
        }


def _owned(
    kind: str, models: list[Any], job: str | None, **extra: Callable[[Any], Any]
) -> list[Owned]:
    return [
        Owned(
            kind,
            m.id,
            m.display_name,
            m.lifecycle_state,
            {"job": m.freeform_tags[JOB_TAG], **{k: f(m) for k, f in extra.items()}},
        )
        for m in tagged_live(models, job)
    ]


def find_job_resources(compute: Any, vn: Any, compartment_id: str, job: str | None) -> list[Owned]:
    """Every live resource tagged with ``job`` (with any job when None) in the compartment, in
    deletion order."""
    comp = compartment_id
    out = _owned(
        "instance",
        list_all(compute.list_instances, comp),
        job,
        shape=lambda m: m.shape,
        availability_domain=lambda m: m.availability_domain,
        preemptible=lambda m: m.preemptible_instance_config is not None,
        time_created=lambda m: m.time_created.isoformat() if m.time_created else None,
        boot_volume_gb=lambda m: getattr(m.source_details, "boot_volume_size_in_gbs", None),
    )
    out += _owned("subnet", list_all(vn.list_subnets, comp), job)
    out += _owned("route_table", list_all(vn.list_route_tables, comp), job)
    out += _owned("security_list", list_all(vn.list_security_lists, comp), job)
    out += _owned("internet_gateway", list_all(vn.list_internet_gateways, comp), job)
    out += _owned("vcn", list_all(vn.list_vcns, comp), job)
    return out


@dataclass
class TeardownResult:
    removed: list[dict[str, Any]] = field(default_factory=list)
    already_gone: list[dict[str, Any]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.removed)


def _ops(compute: Any, vn: Any) -> dict[str, tuple[Callable[..., Any], Callable[..., Any], Any]]:
    return {
        "instance": (compute.terminate_instance, compute.get_instance, compute),
        "subnet": (vn.delete_subnet, vn.get_subnet, vn),
        "route_table": (vn.delete_route_table, vn.get_route_table, vn),
        "security_list": (vn.delete_security_list, vn.get_security_list, vn),
        "internet_gateway": (vn.delete_internet_gateway, vn.get_internet_gateway, vn),
        "vcn": (vn.delete_vcn, vn.get_vcn, vn),
    }


def remove(
    compute: Any,
    vn: Any,
    owned: list[Owned],
    *,
    check_mode: bool,
    wait_timeout: int,
) -> TeardownResult:
    """Delete ``owned`` in dependency order, waiting for each kind to be gone before the next.

    A resource that is already gone (404, or TERMINATING/TERMINATED) counts as removed by
    someone else; it is reported, not an error. A delete that answers 409 Conflict (a subnet
    whose terminated instance's VNIC is not released yet) is retried until ``wait_timeout``, so
    one teardown ends with nothing left. A removed instance carries ``time_terminated``: when
    this teardown saw it TERMINATED (the service reports no termination time), for billing.
    """
    result = TeardownResult()
    ops = _ops(compute, vn)
    for kind in ("instance", *NETWORK_ORDER):
        batch = [o for o in owned if o.kind == kind]
        if check_mode:
            result.removed += [o.as_dict() for o in batch]
            continue
        deleting: list[Owned] = []
        delete, _, _ = ops[kind]
        strategy = (
            oci.retry.DEFAULT_RETRY_STRATEGY
            if kind == "instance"
            else delete_retry_strategy(wait_timeout)
        )
        for item in batch:
            try:
                delete(item.id, retry_strategy=strategy)
            except oci.exceptions.ServiceError as exc:
                if exc.status == 404:
                    result.already_gone.append(item.as_dict())
                    continue
                raise
            deleting.append(item)
        for item in deleting:
            _, get, client = ops[kind]
            last = wait_for(
                client, get, item.id, ["TERMINATED"], wait_timeout, succeed_on_not_found=True
            )
            if last is not None and is_live(last):  # pragma: no cover - wait_for guarantees
                raise RuntimeError(f"{item.id} still {last.lifecycle_state}")
            gone = item.as_dict()
            if kind == "instance":
                gone["time_terminated"] = dt.datetime.now(dt.UTC).isoformat()
            result.removed.append(gone)
    return result

#!/usr/bin/python
# Copyright: faceswap-oci developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: the GPU instance of one faceswap-oci job, with a failover ladder."""

from __future__ import annotations

DOCUMENTATION = r"""
module: oci_instance
short_description: The GPU instance of one faceswap-oci job, launched through a failover ladder
version_added: 0.1.0
description:
  - With O(state=present), returns the job's live instance if there is one (found by the
    freeform tag C(faceswap-oci-job)), otherwise launches one.
  - "The launch walks a ladder: for each shape of O(shapes) in order, for each availability
    domain (those of O(availability_domains), or all of the region, ordered by a compute capacity
    report when O(capacity_report) is on, which is only a hint), it tries to launch. The answers
    C(500 InternalError Out of host capacity), C(400 LimitExceeded) and C(QuotaExceeded) mean
    no capacity there and move on at once (they are not retried); throttling (429) and transient
    5xx are retried with backoff (O(launch_retry_attempts)) and then move on too, as does a shape
    that refuses preemptible capacity (bare metal: preemptible rungs are skipped without a call);
    any other error stops the ladder."
  - A live instance found in state STOPPED is started, not waited on; several live instances of
    the job are refused as a likely leak.
  - With O(preemptible) and O(preemptible_fallback), the whole ladder is walked with preemptible
    capacity first, then again on demand.
  - Waits until the instance is RUNNING and returns its public IP, shape, availability domain,
    GPU model and every attempt. When the ladder is exhausted the task fails listing every
    attempt, and nothing is left behind.
  - With O(state=absent), terminates the job's instances (or O(instance_id)) and waits until
    they are TERMINATED; an instance already gone is not an error.
author: faceswap-oci developers (@faceswap-oci)
extends_documentation_fragment:
  [faceswap_oci.core.oci, faceswap_oci.core.oci.JOB, faceswap_oci.core.attributes]
attributes:
  check_mode:
    description: Reads the current instance and predicts the launch; launches nothing.
  idempotent:
    description: A live instance tagged with the job is returned unchanged.
options:
  state:
    description: Whether the job's instance should exist.
    type: str
    choices: [present, absent]
    default: present
  shapes:
    description:
      - Shapes to try, in order (for example V(VM.GPU.A10.1)).
      - Required with O(state=present).
    type: list
    elements: str
  availability_domains:
    description:
      - Availability domains to try, in order, as full names or suffixes such as V(AD-2).
      - Default is every availability domain of the region.
    type: list
    elements: str
  capacity_report:
    description: Order the availability domains of each shape by a compute capacity report first.
    type: bool
    default: true
  preemptible:
    description: Launch preemptible capacity (terminated when OCI reclaims it, about half price).
    type: bool
    default: false
  preemptible_fallback:
    description: After every preemptible rung failed for capacity, walk the ladder again on demand.
    type: bool
    default: false
  image_id:
    description: Image OCID. Default is the newest image of O(os) offered for the shape.
    type: str
  os:
    description:
      - Operating system and version when O(image_id) is not given, for example
        V(Oracle Linux 9) or V(Canonical Ubuntu 24.04).
    type: str
    default: Oracle Linux 9
  prefer_gpu_image:
    description: For Oracle Linux, prefer the C(-GPU-) images that ship the NVIDIA driver.
    type: bool
    default: true
  subnet_id:
    description: Subnet of the primary VNIC. Required with O(state=present).
    type: str
  assign_public_ip:
    description: Give the primary VNIC a public IP.
    type: bool
    default: true
  ssh_public_key:
    description: OpenSSH public key put into the instance metadata (C(ssh_authorized_keys)).
    type: str
  boot_volume_gb:
    description: Boot volume size in GB.
    type: int
    default: 200
  display_name:
    description: Display name; default C(fsoci-<job>).
    type: str
  launch_retry_attempts:
    description:
      - Calls per rung for throttling (429) and transient 5xx before the ladder moves on to the
        next availability domain or shape.
    type: int
    default: 6
  defined_tags:
    description:
      - Defined tags (namespace -> key -> value) on the instance and its VNIC, for compartments
        whose tag defaults require some.
    type: dict
  instance_id:
    description: With O(state=absent), terminate only this instance.
    type: str
"""

EXAMPLES = r"""
- name: Launch the job's GPU VM, A10 first, then V100
  faceswap_oci.core.oci_instance:
    compartment_id: ocid1.compartment.oc1..aaaaaaaaexample
    region: eu-frankfurt-1
    job: demo
    shapes: [VM.GPU.A10.1, VM.GPU3.1]
    preemptible: true
    preemptible_fallback: true
    subnet_id: "{{ net.subnet_id }}"
    ssh_public_key: "{{ lookup('ansible.builtin.file', 'state/id_ed25519.pub') }}"
  register: vm

- name: Terminate the instance launched above (without instance_id, every one of the job)
  faceswap_oci.core.oci_instance:
    compartment_id: ocid1.compartment.oc1..aaaaaaaaexample
    region: eu-frankfurt-1
    job: demo
    state: absent
    instance_id: "{{ vm.instance_id }}"
"""

RETURN = r"""
instance_id:
  description: OCID of the instance (null in check mode before a launch).
  returned: state=present
  type: str
  sample: ocid1.instance.oc1.eu-frankfurt-1.aaaaexample
lifecycle_state:
  description: Lifecycle state when the module returned.
  returned: state=present
  type: str
  sample: RUNNING
public_ip:
  description: Public IP of the primary VNIC, where SSH reaches the host (null with O(wait=false)).
  returned: state=present
  type: str
  sample: 203.0.113.10
private_ip:
  description: Private IP of the primary VNIC, in the subnet's CIDR (null with O(wait=false)).
  returned: state=present
  type: str
  sample: 10.0.0.12
shape:
  description: Shape that was launched.
  returned: state=present
  type: str
  sample: VM.GPU.A10.1
availability_domain:
  description: Availability domain of the instance.
  returned: state=present
  type: str
  sample: Uocm:EU-FRANKFURT-1-AD-2
preemptible:
  description: Whether the instance is preemptible.
  returned: state=present
  type: bool
  sample: false
gpu_model:
  description: GPU of the shape as OCI describes it, for the setup roles.
  returned: state=present
  type: str
  sample: NVIDIA A10
time_created:
  description: When the service created the instance (ISO 8601), the start of its billing.
  returned: state=present
  type: str
  sample: "2026-12-01T21:00:00+00:00"
boot_volume_gb:
  description: Boot volume size in GB as launched (the billed size).
  returned: state=present
  type: int
  sample: 200
gpus:
  description: Number of GPUs of the shape (C(gpus) of its shape config).
  returned: state=present
  type: int
  sample: 1
image_id:
  description: Image OCID the instance boots.
  returned: state=present
  type: str
  sample: ocid1.image.oc1.eu-frankfurt-1.aaaaexample
display_name:
  description: Display name of the instance.
  returned: state=present
  type: str
  sample: fsoci-demo
attempts:
  description:
    - Every launch attempt in order, with shape, availability domain, preemptible, result
      (V(launched), V(out_of_host_capacity), V(limit_exceeded), V(quota_exceeded), V(error),
      V(planned) in check mode), message, request id and the capacity report's hint.
  returned: always
  type: list
  elements: dict
  sample:
    - {shape: VM.GPU.A10.1, availability_domain: "Uocm:EU-FRANKFURT-1-AD-1", preemptible: false,
       result: out_of_host_capacity, message: "500 InternalError: Out of host capacity.",
       opc_request_id: "5A1F/9C2E", capacity_hint: OUT_OF_HOST_CAPACITY}
removed:
  description: Instances terminated by this run.
  returned: state=absent
  type: list
  elements: dict
  sample: [{"kind": "instance", "id": "ocid1.instance.oc1.eu-frankfurt-1.aaaaexample"}]
"""

from dataclasses import asdict  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.faceswap_oci.core.plugins.module_utils.oci_common import (  # noqa: E402
    RESOURCE_ARGSPEC,
    ErrorContext,
    OciModuleRun,
    WaitFailed,
    argspec,
    format_error,
    job_tags,
    launch_retry_strategy,
    list_all,
    read_after_create_strategy,
    settled,
    tagged_live,
    wait_for,
)
from ansible_collections.faceswap_oci.core.plugins.module_utils.oci_launch import (  # noqa: E402
    Address,
    Attempt,
    ImageCache,
    LadderExhausted,
    LaunchFailed,
    LaunchSpec,
    MultipleInstances,
    capacity_hints,
    find_instance,
    instance_facts,
    ladder,
    match_availability_domains,
    primary_address,
    run_ladder,
)
from ansible_collections.faceswap_oci.core.plugins.module_utils.oci_network import (  # noqa: E402
    Owned,
    remove,
)


def _attempts(attempts: list[Attempt]) -> list[dict[str, Any]]:
    return [asdict(a) for a in attempts]


def _running(
    module: AnsibleModule,
    compute: Any,
    vn: Any,
    comp: str,
    inst: Any,
    attempts: list[Attempt],
    region: str | None,
    changed: bool,
) -> None:
    """Wait for RUNNING and read the address; any failure names the launched instance."""
    p = module.params
    address = Address()
    try:
        if p["wait"]:
            inst = settled(
                compute,
                compute.get_instance,
                inst,
                "RUNNING",
                p["wait_timeout"],
                fail_states=["TERMINATED"],
            )
            address = primary_address(compute, vn, comp, inst.id, p["wait_timeout"])
    except WaitFailed as exc:
        module.fail_json(
            msg=f"oci_instance: instance {inst.id} (shape {inst.shape}, region {region}) went to "
            f"{exc.state} while starting (preempted or failed). Next: run again to launch a new "
            "one, or set preemptible: false.",
            attempts=_attempts(attempts),
            instance_id=inst.id,
        )
    except Exception as exc:  # every failure after a launch names the instance
        ctx = ErrorContext("wait for the launched instance", "wait_timeout", region, inst.id)
        module.fail_json(
            msg=format_error(exc, ctx)
            + f" The instance {inst.id} ({inst.shape}) was launched and is kept; run again to "
            "reuse it, or `faceswap-oci down` to remove it.",
            attempts=_attempts(attempts),
            instance_id=inst.id,
        )
    module.exit_json(changed=changed, **instance_facts(inst, address, attempts))


def _present(
    module: AnsibleModule, config: dict[str, Any], compute: Any, vn: Any, identity: Any
) -> None:
    p = module.params
    comp, job, region = p["compartment_id"], p["job"], config.get("region")
    for name in ("shapes", "subnet_id", "ssh_public_key"):
        if not p[name]:
            module.fail_json(
                msg=f"option {name} is required with state=present; set it (job {job})"
            )
    try:
        live = find_instance(compute, comp, job)
    except MultipleInstances as exc:
        module.fail_json(
            msg=f"oci_instance (region {region}, compartment {comp}): {exc}.",
            instance_ids=[i.id for i in exc.instances],
            attempts=[],
        )
    if live is not None:
        started = False
        if live.lifecycle_state in ("STOPPED", "STOPPING"):
            # A stopped instance never becomes RUNNING by itself: start it (InstanceAction START;
            # a STOPPING one is waited on first, START of a STOPPING instance is refused).
            if module.check_mode:
                module.exit_json(changed=True, **instance_facts(live, Address(), []))
            if live.lifecycle_state == "STOPPING":
                wait_for(compute, compute.get_instance, live.id, ["STOPPED"], p["wait_timeout"])
            live = compute.instance_action(live.id, "START").data
            started = True
        _running(module, compute, vn, comp, live, [], region, started)
    names = [ad.name for ad in list_all(identity.list_availability_domains, comp)]
    try:
        ads = match_availability_domains(p["availability_domains"], names)
    except ValueError as exc:
        module.fail_json(
            msg=f"option availability_domains: {exc} (region {region}); "
            "fix the list or leave it out"
        )
    tenancy = config.get("tenancy")
    hints = (
        capacity_hints(compute, tenancy, ads, p["shapes"])
        if p["capacity_report"] and tenancy
        else {}
    )
    rungs = ladder(p["shapes"], ads, p["preemptible"], p["preemptible_fallback"], hints)
    if module.check_mode:
        planned = [
            asdict(Attempt(r.shape, r.availability_domain, r.preemptible, "planned")) for r in rungs
        ]
        module.exit_json(changed=True, instance_id=None, attempts=planned, lifecycle_state=None)
    if p["assign_public_ip"]:
        # the network role has just created it: a 404 may be eventual consistency
        subnet = vn.get_subnet(p["subnet_id"], retry_strategy=read_after_create_strategy()).data
        if subnet.prohibit_public_ip_on_vnic:
            module.fail_json(
                msg=f"option subnet_id: subnet {subnet.id} (region {region}) prohibits public "
                "IPs on VNICs, and the job reaches its instance over SSH on a public IP. Next: "
                "choose a public subnet in target.oci.subnet, or leave it out for a new VCN.",
                attempts=[],
            )
    spec = LaunchSpec(
        compartment_id=comp,
        job=job,
        tags=job_tags(job),
        subnet_id=p["subnet_id"],
        ssh_public_key=p["ssh_public_key"],
        boot_volume_gb=p["boot_volume_gb"],
        display_name=p["display_name"] or f"fsoci-{job}",
        assign_public_ip=p["assign_public_ip"],
        defined_tags=p["defined_tags"] or None,
    )
    images = ImageCache(compute, comp, p["os"], p["image_id"], p["prefer_gpu_image"])
    strategy = launch_retry_strategy(max_attempts=p["launch_retry_attempts"])
    try:
        inst, attempts = run_ladder(compute, spec, rungs, images, hints, retry_strategy=strategy)
    except LadderExhausted as exc:
        module.fail_json(
            msg=f"oci_instance: option shapes/availability_domains (region {region}): {exc}. "
            "Next: add shapes or availability domains, allow preemptible_fallback, or try later. "
            "Nothing was created.",
            attempts=_attempts(exc.attempts),
        )
    except LaunchFailed as exc:
        ctx = ErrorContext("launch_instance", "shapes", region, comp)
        module.fail_json(msg=format_error(exc.error, ctx), attempts=_attempts(exc.attempts))
    except ValueError as exc:
        module.fail_json(
            msg=f"option os/image_id: {exc} (region {region}); choose another os or give image_id"
        )
    _running(module, compute, vn, comp, inst, attempts, region, True)


def _absent(module: AnsibleModule, compute: Any, vn: Any) -> None:
    p = module.params
    comp, job = p["compartment_id"], p["job"]
    if p["instance_id"]:
        inst = compute.get_instance(p["instance_id"]).data
        targets = [inst] if inst.lifecycle_state not in ("TERMINATING", "TERMINATED") else []
    else:
        targets = tagged_live(list_all(compute.list_instances, comp), job)
    owned = [Owned("instance", i.id, i.display_name, i.lifecycle_state) for i in targets]
    result = remove(
        compute, vn, owned, check_mode=module.check_mode, wait_timeout=p["wait_timeout"]
    )
    module.exit_json(
        changed=result.changed,
        removed=result.removed,
        already_gone=result.already_gone,
        attempts=[],
    )


def main() -> None:
    module = AnsibleModule(
        argument_spec=argspec(
            RESOURCE_ARGSPEC,
            shapes={"type": "list", "elements": "str"},
            availability_domains={"type": "list", "elements": "str"},
            capacity_report={"type": "bool", "default": True},
            preemptible={"type": "bool", "default": False},
            preemptible_fallback={"type": "bool", "default": False},
            image_id={"type": "str"},
            os={"type": "str", "default": "Oracle Linux 9"},
            prefer_gpu_image={"type": "bool", "default": True},
            subnet_id={"type": "str"},
            assign_public_ip={"type": "bool", "default": True},
            ssh_public_key={"type": "str"},
            boot_volume_gb={"type": "int", "default": 200},
            display_name={"type": "str"},
            instance_id={"type": "str"},
            launch_retry_attempts={"type": "int", "default": 6},
            defined_tags={"type": "dict"},
        ),
        supports_check_mode=True,
    )
    run = OciModuleRun(module, "oci_instance")
    import oci

    with run:
        config, compute, vn, identity = run.clients(
            oci.core.ComputeClient, oci.core.VirtualNetworkClient, oci.identity.IdentityClient
        )
        if module.params["state"] == "present":
            _present(module, config, compute, vn, identity)
        else:
            _absent(module, compute, vn)


if __name__ == "__main__":
    main()

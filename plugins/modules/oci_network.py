#!/usr/bin/python
# Copyright: faceswap-oci developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: the network of one faceswap-oci job."""

from __future__ import annotations

DOCUMENTATION = r"""
module: oci_network
short_description: The network of one faceswap-oci job (VCN, gateway, routes, firewall, subnet)
version_added: 0.1.0
description:
  - With O(state=present), makes sure the job has a VCN, an internet gateway, a route table that
    sends 0.0.0.0/0 to the gateway, a security list that lets in TCP 22 from
    O(ssh_ingress_cidr) only (egress open), and a public subnet using both.
  - Every resource carries the freeform tag C(faceswap-oci-job=<job>); an existing resource is
    found by that tag, so a second run changes nothing and returns the same OCIDs.
  - With O(state=absent), deletes every network resource tagged with the job, in dependency
    order (subnet, route table, security list, gateway, VCN), tolerating ones already gone.
    Instances of the job must be gone first (see M(faceswap_oci.core.oci_job_teardown)).
  - One module for the five resources, because they only ever exist together for a job and the
    dependency order lives in one place; each resource is still looked up and created on its own.
author: faceswap-oci developers (@faceswap-oci)
extends_documentation_fragment:
  [faceswap_oci.core.oci, faceswap_oci.core.oci.JOB, faceswap_oci.core.attributes]
attributes:
  check_mode:
    description: Reads the current resources and predicts what would be created or deleted.
  idempotent:
    description: Found by tag; a second run with the same options changes nothing.
options:
  state:
    description: Whether the job's network should exist.
    type: str
    choices: [present, absent]
    default: present
  ssh_ingress_cidr:
    description:
      - CIDR allowed to reach TCP 22 (for example the controller's public address /32).
      - Required with O(state=present).
    type: str
  vcn_cidr:
    description: CIDR of the new VCN.
    type: str
    default: 10.0.0.0/16
  subnet_cidr:
    description: CIDR of the new public subnet, inside O(vcn_cidr).
    type: str
    default: 10.0.0.0/24
  defined_tags:
    description:
      - Defined tags (namespace -> key -> value) on every resource created, for compartments
        whose tag defaults require some.
    type: dict
"""

EXAMPLES = r"""
- name: Create the job's network
  faceswap_oci.core.oci_network:
    compartment_id: ocid1.compartment.oc1..aaaaaaaaexample
    region: eu-frankfurt-1
    job: demo
    ssh_ingress_cidr: 198.51.100.7/32
  register: net

- name: Remove the job's network (after its instance)
  faceswap_oci.core.oci_network:
    compartment_id: ocid1.compartment.oc1..aaaaaaaaexample
    region: eu-frankfurt-1
    job: demo
    state: absent
"""

RETURN = r"""
vcn_id:
  description: OCID of the job's VCN (null in check mode before it exists).
  returned: state=present
  type: str
  sample: ocid1.vcn.oc1.eu-frankfurt-1.aaaaexample
internet_gateway_id:
  description: OCID of the internet gateway, the VCN's way to the internet.
  returned: state=present
  type: str
  sample: ocid1.internetgateway.oc1.eu-frankfurt-1.aaaaexample
route_table_id:
  description: OCID of the subnet's route table; its one rule sends 0.0.0.0/0 to the gateway.
  returned: state=present
  type: str
  sample: ocid1.routetable.oc1.eu-frankfurt-1.aaaaexample
security_list_id:
  description: OCID of the subnet's security list (TCP 22 from O(ssh_ingress_cidr), all egress).
  returned: state=present
  type: str
  sample: ocid1.securitylist.oc1.eu-frankfurt-1.aaaaexample
subnet_id:
  description: OCID of the public subnet, where the job's instance gets its VNIC.
  returned: state=present
  type: str
  sample: ocid1.subnet.oc1.eu-frankfurt-1.aaaaexample
created:
  description: Resources created by this run (kind and OCID).
  returned: state=present
  type: list
  elements: dict
  sample: [{"kind": "vcn", "id": "ocid1.vcn.oc1.eu-frankfurt-1.aaaaexample"}]
updated:
  description: Resources whose rules this run corrected.
  returned: state=present
  type: list
  elements: dict
  sample: []
removed:
  description: Resources deleted by this run (kind, OCID, display name, state before).
  returned: state=absent
  type: list
  elements: dict
  sample: [{"kind": "subnet", "id": "ocid1.subnet.oc1.eu-frankfurt-1.aaaaexample"}]
already_gone:
  description: Resources that were gone by the time they were deleted.
  returned: state=absent
  type: list
  elements: dict
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.faceswap_oci.core.plugins.module_utils.oci_common import (  # noqa: E402
    RESOURCE_ARGSPEC,
    OciModuleRun,
    argspec,
    job_tags,
)
from ansible_collections.faceswap_oci.core.plugins.module_utils.oci_network import (  # noqa: E402
    NETWORK_ORDER,
    NetworkSpec,
    ensure_network,
    find_job_resources,
    remove,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=argspec(
            RESOURCE_ARGSPEC,
            ssh_ingress_cidr={"type": "str"},
            vcn_cidr={"type": "str", "default": "10.0.0.0/16"},
            subnet_cidr={"type": "str", "default": "10.0.0.0/24"},
            defined_tags={"type": "dict"},
        ),
        required_if=[("state", "present", ["ssh_ingress_cidr"])],
        supports_check_mode=True,
    )
    run = OciModuleRun(module, "oci_network")
    import oci

    p = module.params
    with run:
        _, vn, compute = run.clients(oci.core.VirtualNetworkClient, oci.core.ComputeClient)
        if p["state"] == "present":
            spec = NetworkSpec(
                compartment_id=p["compartment_id"],
                job=p["job"],
                tags=job_tags(p["job"]),
                ssh_ingress_cidr=p["ssh_ingress_cidr"],
                vcn_cidr=p["vcn_cidr"],
                subnet_cidr=p["subnet_cidr"],
                defined_tags=p["defined_tags"] or None,
            )
            res = ensure_network(
                vn,
                spec,
                check_mode=module.check_mode,
                wait=p["wait"],
                wait_timeout=p["wait_timeout"],
            )
            module.exit_json(
                changed=res.changed,
                created=res.created,
                updated=res.updated,
                **{f"{k}_id": v for k, v in res.ids.items()},
            )
        owned = [
            o
            for o in find_job_resources(compute, vn, p["compartment_id"], p["job"])
            if o.kind in NETWORK_ORDER
        ]
        result = remove(
            compute, vn, owned, check_mode=module.check_mode, wait_timeout=p["wait_timeout"]
        )
        module.exit_json(
            changed=result.changed, removed=result.removed, already_gone=result.already_gone
        )


if __name__ == "__main__":
    main()

#!/usr/bin/python
# Copyright: faceswap-oci developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: every live OCI resource of one faceswap-oci job."""

from __future__ import annotations

DOCUMENTATION = r"""
module: oci_job_resources_info
short_description: List every live OCI resource tagged with a faceswap-oci job
version_added: 0.1.0
description:
  - Lists the instances, subnets, route tables, security lists, internet gateways and VCNs of
    the compartment that carry the freeform tag C(faceswap-oci-job=<job>) and are not being or
    already deleted, in the order teardown deletes them, then the job buckets (Object Storage)
    with that tag (kind C(bucket), id C(<namespace>/<name>)).
  - Needs no local state, so it also works after the job's state directory is lost.
  - Without O(job), lists the resources of every job (each with its C(job)), which is what
    C(faceswap-oci sweep) needs to find leftovers of jobs that are no longer running.
author: faceswap-oci developers (@faceswap-oci)
extends_documentation_fragment: [faceswap_oci.core.oci, faceswap_oci.core.attributes.READ_ONLY]
options:
  compartment_id:
    description: OCID of the compartment to search.
    type: str
    required: true
  job:
    description: Job name (value of the freeform tag C(faceswap-oci-job)); omit for every job.
    type: str
"""

EXAMPLES = r"""
- name: What does job demo still own?
  faceswap_oci.core.oci_job_resources_info:
    compartment_id: ocid1.compartment.oc1..aaaaaaaaexample
    region: eu-frankfurt-1
    job: demo
  register: owned

- name: Fail when anything is left
  ansible.builtin.assert:
    that: owned.resources | length == 0
"""

RETURN = r"""
resources:
  description:
    - Live tagged resources (kind, id, display_name, lifecycle_state, job).
    - Instances add shape and availability_domain.
  returned: always
  type: list
  elements: dict
  sample:
    - {kind: instance, id: ocid1.instance.oc1.eu-frankfurt-1.aaaaexample, display_name: fsoci-demo,
       lifecycle_state: RUNNING, shape: VM.GPU.A10.1,
       availability_domain: "Uocm:EU-FRANKFURT-1-AD-1"}
count:
  description: Number of live tagged resources.
  returned: always
  type: int
  sample: 6
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.faceswap_oci.core.plugins.module_utils.oci_common import (  # noqa: E402
    OciModuleRun,
    argspec,
)
from ansible_collections.faceswap_oci.core.plugins.module_utils.oci_network import (  # noqa: E402
    find_job_resources,
)
from ansible_collections.faceswap_oci.core.plugins.module_utils.oci_storage import (  # noqa: E402
    find_job_buckets,
    get_namespace,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=argspec(
            compartment_id={"type": "str", "required": True},
            job={"type": "str"},
        ),
        supports_check_mode=True,
    )
    run = OciModuleRun(module, "oci_job_resources_info")
    import oci

    p = module.params
    with run:
        _, compute, vn = run.clients(oci.core.ComputeClient, oci.core.VirtualNetworkClient)
        owned = find_job_resources(compute, vn, p["compartment_id"], p["job"])
        _, storage = run.clients(oci.object_storage.ObjectStorageClient)
        buckets = find_job_buckets(
            storage, get_namespace(storage, None), p["compartment_id"], p["job"]
        )
    resources = [o.as_dict() for o in owned] + buckets
    module.exit_json(changed=False, resources=resources, count=len(resources))


if __name__ == "__main__":
    main()

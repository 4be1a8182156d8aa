#!/usr/bin/python
# Copyright: faceswap-oci developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: remove every OCI resource of one faceswap-oci job, found by its tag."""

from __future__ import annotations

DOCUMENTATION = r"""
module: oci_job_teardown
short_description: Remove every OCI resource tagged with a faceswap-oci job
version_added: 0.1.0
description:
  - Finds every live resource of the compartment tagged C(faceswap-oci-job=<job>) and deletes
    them in dependency order, waiting for each kind to be gone before the next, instances
    (terminated, waited for until TERMINATED), subnets, route tables, security lists, internet
    gateways, VCNs. The service answers 409 Conflict when that order is not kept.
  - Resources already gone are reported, not errors, so a teardown after a partial failure, a
    Ctrl-C, a lost state directory or a previous teardown always converges to nothing left.
  - Then the job's storage (see M(faceswap_oci.core.oci_job_bucket)), its pre-authenticated
    requests always (they are credentials), its objects and bucket only with
    O(remove_storage), which the runner sets once the results were fetched and verified and
    the spec does not say C(storage.keep), or when the job's prefix holds nothing. Without it
    the model stays in the bucket.
  - Ends with a fresh listing and fails if anything tagged is still alive.
author: faceswap-oci developers (@faceswap-oci)
extends_documentation_fragment:
  [faceswap_oci.core.oci, faceswap_oci.core.oci.JOB, faceswap_oci.core.attributes]
options:
  remove_storage:
    description: Also delete the job's objects and, when the job owns it, its bucket.
    type: bool
    default: false
  storage_bucket:
    description: The user's bucket that holds the job's prefix; default the job's own bucket.
    type: str
attributes:
  check_mode:
    description: Lists what would be removed; deletes nothing.
  idempotent:
    description: A second run finds nothing and reports changed=false.
"""

EXAMPLES = r"""
- name: Remove everything job demo owns
  faceswap_oci.core.oci_job_teardown:
    compartment_id: ocid1.compartment.oc1..aaaaaaaaexample
    region: eu-frankfurt-1
    job: demo
  register: teardown

- name: Say what was removed
  ansible.builtin.debug:
    msg: "{{ teardown.removed | map(attribute='kind') | list }}"
"""

RETURN = r"""
removed:
  description: Resources deleted by this run, in the order they were deleted.
  returned: always
  type: list
  elements: dict
  sample: [{kind: instance, id: ocid1.instance.oc1.eu-frankfurt-1.aaaaexample,
            display_name: fsoci-demo,
            lifecycle_state: RUNNING}]
already_gone:
  description: Resources that were gone (404) by the time they were deleted.
  returned: always
  type: list
  elements: dict
  sample: []
storage:
  description: What was removed of the job's storage (PAR count, object count, bucket or null).
  returned: always
  type: dict
  sample: {pars: 1, objects: 0, bucket: null}
left:
  description: Live tagged resources still found after the teardown (empty on success).
  returned: always
  type: list
  elements: dict
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.faceswap_oci.core.plugins.module_utils.oci_common import (  # noqa: E402
    JOB_ARGSPEC,
    OciModuleRun,
    argspec,
)
from ansible_collections.faceswap_oci.core.plugins.module_utils.oci_network import (  # noqa: E402
    find_job_resources,
    remove,
)
from ansible_collections.faceswap_oci.core.plugins.module_utils.oci_storage import (  # noqa: E402
    find_job_bucket,
    get_namespace,
    remove_job_storage,
)

NOTHING = {"pars": 0, "objects": 0, "bucket": None}


def main() -> None:
    module = AnsibleModule(
        argument_spec=argspec(
            JOB_ARGSPEC,
            remove_storage={"type": "bool", "default": False},
            storage_bucket={"type": "str"},
        ),
        supports_check_mode=True,
    )
    run = OciModuleRun(module, "oci_job_teardown", "Run the teardown again; it resumes by tag.")
    import oci

    p = module.params
    with run:
        _, compute, vn = run.clients(oci.core.ComputeClient, oci.core.VirtualNetworkClient)
        owned = find_job_resources(compute, vn, p["compartment_id"], p["job"])
        result = remove(
            compute, vn, owned, check_mode=module.check_mode, wait_timeout=p["wait_timeout"]
        )
        _, storage_client = run.clients(oci.object_storage.ObjectStorageClient)
        jb = find_job_bucket(
            storage_client, get_namespace(storage_client, None), p["job"], p["storage_bucket"]
        )
        storage = (
            dict(NOTHING)
            if jb is None
            else remove_job_storage(
                storage_client, jb, p["job"], not p["remove_storage"], module.check_mode
            )
        )
        left = (
            []
            if module.check_mode
            else find_job_resources(compute, vn, p["compartment_id"], p["job"])
        )
    if left:
        module.fail_json(
            msg=f"oci_job_teardown: {len(left)} resources of job {p['job']} are still alive "
            f"(region {p.get('region')}): "
            + ", ".join(f"{o.kind} {o.id}" for o in left)
            + ". Next: run the teardown again.",
            removed=result.removed,
            already_gone=result.already_gone,
            storage=storage,
            left=[o.as_dict() for o in left],
        )
    module.exit_json(
        changed=result.changed or bool(storage["pars"] or storage["objects"] or storage["bucket"]),
        removed=result.removed,
        already_gone=result.already_gone,
        storage=storage,
        left=[],
    )


if __name__ == "__main__":
    main()

#!/usr/bin/python
# Copyright: faceswap-oci developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: the job's Object Storage bucket and the VM's pre-authenticated request."""

from __future__ import annotations

DOCUMENTATION = r"""
module: oci_job_bucket
short_description: The job bucket in OCI Object Storage and the VM's pre-authenticated request
version_added: 0.1.0
description:
  - With O(state=present), makes sure the job has somewhere durable for its model, either its
    own private bucket C(fsoci-<job>), tagged C(faceswap-oci-job=<job>) like every other job
    resource, or the job's prefix C(jobs/<job>/) in the bucket named by O(bucket), which must
    exist and of which nothing else is touched.
  - It then creates a pre-authenticated request (PAR) with read and write access to objects
    under that prefix, expiring O(max_hours) plus two hours from now, and writes its URL to
    O(par_file) (mode 0600). The URL is a credential, never returned, logged or put in an
    event. A PAR that O(par_file) already holds is kept.
  - With O(state=absent), deletes the job's PARs, and unless O(keep), every object and
    uncommitted upload under the prefix and, when the job owns it, the bucket.
author: faceswap-oci developers (@faceswap-oci)
extends_documentation_fragment:
  [faceswap_oci.core.oci, faceswap_oci.core.oci.JOB, faceswap_oci.core.attributes]
options:
  state:
    description: V(present) makes the bucket and the PAR; V(absent) removes them.
    type: str
    choices: [present, absent]
    default: present
  namespace:
    description: Object Storage namespace of the tenancy; default, asked of the service.
    type: str
  bucket:
    description:
      - An existing bucket to use instead of the job's own; only the job's prefix is touched.
    type: str
  max_hours:
    description: The PAR expires this many hours (plus two) from now.
    type: float
    default: 12.0
  par_file:
    description:
      - Where the PAR's URL is written (0600). Required with O(state=present).
    type: path
  keep:
    description: With O(state=absent), keep the objects and the bucket (delete only the PARs).
    type: bool
    default: false
attributes:
  check_mode:
    description: Reads the bucket and PARs; creates and deletes nothing, writes no file.
  idempotent:
    description: A second run finds the bucket and the PAR of O(par_file) and changes nothing.
"""

EXAMPLES = r"""
- name: The job bucket and the VM's PAR
  faceswap_oci.core.oci_job_bucket:
    compartment_id: ocid1.compartment.oc1..aaaaaaaaexample
    region: eu-frankfurt-1
    job: demo
    max_hours: 12
    par_file: /home/me/.local/state/faceswap-oci/jobs/demo/par.url
  register: bucket

- name: Revoke the VM's PAR, keep the model in the bucket (without keep, remove it all)
  faceswap_oci.core.oci_job_bucket:
    compartment_id: ocid1.compartment.oc1..aaaaaaaaexample
    region: eu-frankfurt-1
    job: demo
    state: absent
    keep: true
"""

RETURN = r"""
namespace:
  description: The Object Storage namespace.
  returned: always
  type: str
  sample: axaxnpcrorw5
bucket:
  description: The bucket's name.
  returned: always
  type: str
  sample: fsoci-demo
prefix:
  description: Where the job's objects live in the bucket.
  returned: always
  type: str
  sample: jobs/demo/
owned:
  description: Whether the bucket is the job's own (deleted with it) or the user's.
  returned: always
  type: bool
  sample: true
par_id:
  description: OCID-like id of the PAR (not its URL, which is a credential).
  returned: when state is present
  type: str
  sample: QgT6f1skUMbXDhpXKQ4BRX9u7ci8AAJ7f9OGzgdEkNJ3XQmHzeN
par_expires:
  description: When the PAR expires (RFC 3339).
  returned: when state is present
  type: str
  sample: "2026-01-01T14:00:00+00:00"
removed:
  description: With state absent, what was removed (PAR count, object count, bucket or null).
  returned: when state is absent
  type: dict
  sample: {pars: 1, objects: 12, bucket: fsoci-demo}
"""

import datetime as dt  # noqa: E402
import os  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.faceswap_oci.core.plugins.module_utils.oci_common import (  # noqa: E402
    RESOURCE_ARGSPEC,
    OciModuleRun,
    argspec,
)
from ansible_collections.faceswap_oci.core.plugins.module_utils.oci_storage import (  # noqa: E402
    StorageInputError,
    check_bucket_name,
    create_par,
    default_bucket_name,
    delete_pars,
    ensure_bucket,
    find_job_bucket,
    get_namespace,
    job_pars,
    job_prefix,
    par_expiry,
    remove_job_storage,
    write_secret,
)


def _held_par(par_file: str, existing: list[Any]) -> Any | None:
    """The listed PAR whose id ``par_file``'s companion ``.id`` names, if its URL is there and
    it has at least an hour left."""
    id_file = par_file + ".id"
    if not (os.path.exists(par_file) and os.path.exists(id_file)):
        return None
    with open(id_file, encoding="utf-8") as fh:
        held = fh.read().strip()
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    return next((x for x in existing if x.id == held and x.time_expires > soon), None)


def main() -> None:
    module = AnsibleModule(
        argument_spec=argspec(
            RESOURCE_ARGSPEC,
            namespace={"type": "str"},
            bucket={"type": "str"},
            max_hours={"type": "float", "default": 12.0},
            par_file={"type": "path"},
            keep={"type": "bool", "default": False},
        ),
        required_if=[("state", "present", ["par_file"])],
        supports_check_mode=True,
    )
    p = module.params
    run = OciModuleRun(module, "oci_job_bucket", "Run the task again; it finds the bucket by name.")
    import oci

    try:
        if p["bucket"]:
            check_bucket_name(p["bucket"], "bucket (storage.bucket)")
    except StorageInputError as exc:
        module.fail_json(msg=str(exc))
    with run:
        _, client = run.clients(oci.object_storage.ObjectStorageClient)
        try:
            namespace = get_namespace(client, p["namespace"])
            if p["state"] == "absent":
                found = find_job_bucket(client, namespace, p["job"], p["bucket"])
                if found is None:
                    module.exit_json(
                        changed=False,
                        namespace=namespace,
                        bucket=p["bucket"] or default_bucket_name(p["job"]),
                        prefix=job_prefix(p["job"]),
                        owned=not p["bucket"],
                        removed={"pars": 0, "objects": 0, "bucket": None},
                    )
                    return
                removed = remove_job_storage(client, found, p["job"], p["keep"], module.check_mode)
                changed = bool(removed["pars"] or removed["objects"] or removed["bucket"])
                module.exit_json(changed=changed, removed=removed, **found.as_dict())
            jb, changed = ensure_bucket(
                client, namespace, p["compartment_id"], p["job"], p["bucket"], module.check_mode
            )
            existing = [] if changed else job_pars(client, jb, p["job"])
            held = _held_par(p["par_file"], existing)
            if held is not None:
                module.exit_json(
                    changed=changed,
                    par_id=held.id,
                    par_expires=held.time_expires.isoformat(),
                    **jb.as_dict(),
                )
            if module.check_mode:
                module.exit_json(changed=True, par_id=None, par_expires=None, **jb.as_dict())
            delete_pars(client, jb, existing)
            expires = par_expiry(p["max_hours"])
            par_id, access_uri = create_par(client, jb, p["job"], expires)
            endpoint = client.base_client.endpoint.rstrip("/")
            write_secret(p["par_file"], endpoint + access_uri + "\n")
            write_secret(p["par_file"] + ".id", par_id + "\n")
        except StorageInputError as exc:
            module.fail_json(msg=str(exc))
    module.exit_json(changed=True, par_id=par_id, par_expires=expires.isoformat(), **jb.as_dict())


if __name__ == "__main__":
    main()

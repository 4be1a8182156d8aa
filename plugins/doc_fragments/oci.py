# Copyright: faceswap-oci developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options every faceswap_oci.core OCI module shares: authentication, endpoint, waiting."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  config_file:
    description:
      - Path of the OCI SDK config file.
    type: path
    default: ~/.oci/config
  profile:
    description:
      - Section of O(config_file) to use.
    type: str
    default: DEFAULT
  auth_type:
    description:
      - V(api_key) signs with the key of O(profile); V(security_token) with the session token
        of O(profile) (C(security_token_file), written by C(oci session authenticate));
        V(instance_principal) uses the identity of the OCI instance the task runs on;
        V(resource_principal) that of the OCI resource (a function, a notebook).
    type: str
    choices: [api_key, security_token, instance_principal, resource_principal]
    default: api_key
  region:
    description:
      - OCI region identifier, for example V(eu-frankfurt-1). Overrides the profile's region.
    type: str
  service_endpoint:
    description:
      - Send every API call to this base URL instead of the region's endpoint.
      - Meant for tests against a local OCI API; leave unset otherwise.
    type: str
  wait:
    description:
      - Wait until created resources are available and deleted ones are gone.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait for one resource to reach its state (bounds C(oci.wait_until)).
    type: int
    default: 1200
requirements:
  - python >= 3.11
  - oci >= 2.150 (the OCI Python SDK)
notes:
  - Every call goes through the OCI Python SDK, which signs the requests; reads and deletes use
    the SDK's default retry strategy, lists C(oci.pagination), waits C(oci.wait_until).
"""

    JOB = r"""
options:
  compartment_id:
    description:
      - OCID of the compartment that holds the job's resources.
    type: str
    required: true
  job:
    description:
      - Job name. Every resource carries the freeform tag C(faceswap-oci-job) with this value,
        and is found again by it.
    type: str
    required: true
"""

# Copyright: faceswap-oci developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inventory plugin: the running instances of faceswap-oci jobs, found by their freeform tag."""

from __future__ import annotations

DOCUMENTATION = r"""
name: oci_job
short_description: Hosts of faceswap-oci jobs on OCI, found by the job tag
version_added: 0.1.0
description:
  - Lists the live instances of the compartment that carry the freeform tag C(faceswap-oci-job)
    (of the jobs in O(jobs), or of every job), and adds each as a host of O(group) with
    C(ansible_host) set to its public IP (private IP with O(use_private_ip)).
  - Host variables C(oci_job), C(oci_instance_id), C(oci_shape), C(oci_availability_domain),
    C(oci_gpu_model), C(oci_gpus), C(oci_preemptible), C(oci_lifecycle_state) are set for
    O(compose), O(groups) and O(keyed_groups).
  - The inventory file name must end in C(oci.yml) or C(oci.yaml).
author: faceswap-oci developers (@faceswap-oci)
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  plugin:
    description: The name of this plugin.
    required: true
    choices: [faceswap_oci.core.oci_job]
    type: str
  config_file:
    description: Path of the OCI SDK config file.
    type: path
    default: ~/.oci/config
  profile:
    description: Section of O(config_file) to use.
    type: str
    default: DEFAULT
  region:
    description: OCI region; default is the profile's region.
    type: str
  service_endpoint:
    description: Base URL of the API instead of the region's endpoint (tests only).
    type: str
  compartment_id:
    description: Compartment OCID to search.
    type: str
    required: true
  jobs:
    description: Job names to include; empty includes every tagged job.
    type: list
    elements: str
    default: []
  group:
    description: Group every host joins.
    type: str
    default: fsoci_target
  hostname:
    description:
      - V(job) names each host after its job (one instance per job, the faceswap-oci rule);
        V(display_name) uses the instance's display name; V(target) names the host C(target)
        as the runner does (use with one job).
    type: str
    choices: [job, display_name, target]
    default: job
  use_private_ip:
    description: Set C(ansible_host) to the private IP instead of the public one.
    type: bool
    default: false
"""

EXAMPLES = r"""
# inventory/oci.yml
plugin: faceswap_oci.core.oci_job
compartment_id: ocid1.compartment.oc1..aaaaaaaaexample
region: eu-frankfurt-1
jobs: [demo]
hostname: target
compose:
  ansible_user: "'opc'"
  ansible_ssh_private_key_file: "'~/.local/state/faceswap-oci/jobs/' ~ oci_job ~ '/id_ed25519'"
keyed_groups:
  - key: oci_shape
    prefix: shape
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/faceswap-oci/inventory
cache_timeout: 300
"""

from typing import Any  # noqa: E402

from ansible.errors import AnsibleError  # noqa: E402
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable  # noqa: E402
from ansible_collections.faceswap_oci.core.plugins.module_utils.oci_common import (  # noqa: E402
    HAS_OCI,
    JOB_TAG,
    ConfigProblems,
    ErrorContext,
    clients_from_params,
    format_error,
    is_live,
    list_all,
)
from ansible_collections.faceswap_oci.core.plugins.module_utils.oci_launch import (  # noqa: E402
    primary_address,
)


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "faceswap_oci.core.oci_job"

    def verify_file(self, path: str) -> bool:
        return super().verify_file(path) and path.endswith(("oci.yml", "oci.yaml"))

    def _fetch(self) -> list[dict[str, Any]]:
        import oci

        params = {
            "config_file": self.get_option("config_file"),
            "profile": self.get_option("profile"),
            "region": self.get_option("region"),
            "service_endpoint": self.get_option("service_endpoint"),
            "compartment_id": self.get_option("compartment_id"),
            "auth_type": "api_key",
        }
        ctx = ErrorContext(
            "oci_job inventory", "compartment_id", params["region"], params["compartment_id"]
        )
        wanted = set(self.get_option("jobs") or [])
        try:
            _, compute, vn = clients_from_params(
                params, oci.core.ComputeClient, oci.core.VirtualNetworkClient
            )
            hosts = []
            for inst in list_all(compute.list_instances, params["compartment_id"]):
                job = (inst.freeform_tags or {}).get(JOB_TAG)
                if job is None or not is_live(inst) or (wanted and job not in wanted):
                    continue
                address = primary_address(compute, vn, params["compartment_id"], inst.id, 60)
                cfg = inst.shape_config
                hosts.append(
                    {
                        "oci_job": job,
                        "oci_instance_id": inst.id,
                        "oci_display_name": inst.display_name,
                        "oci_shape": inst.shape,
                        "oci_availability_domain": inst.availability_domain,
                        "oci_gpu_model": getattr(cfg, "gpu_description", None) if cfg else None,
                        "oci_gpus": getattr(cfg, "gpus", None) if cfg else None,
                        "oci_preemptible": inst.preemptible_instance_config is not None,
                        "oci_lifecycle_state": inst.lifecycle_state,
                        "oci_public_ip": address.public_ip,
                        "oci_private_ip": address.private_ip,
                    }
                )
        except ConfigProblems as exc:
            raise AnsibleError(f"oci_job inventory: OCI config problems: {exc}") from exc
        except Exception as exc:  # every SDK error becomes one readable message
            raise AnsibleError(format_error(exc, ctx)) from exc
        return sorted(hosts, key=lambda h: (h["oci_job"], h["oci_instance_id"]))

    def parse(self, inventory: Any, loader: Any, path: str, cache: bool = True) -> None:
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        if not HAS_OCI:
            raise AnsibleError("the oci_job inventory needs the oci Python SDK on the controller")
        cache_key = self.get_cache_key(path)
        use_cache = self.get_option("cache") and cache
        hosts = None
        if use_cache:
            try:
                hosts = self._cache[cache_key]
            except KeyError:
                hosts = None
        if hosts is None:
            hosts = self._fetch()
            if self.get_option("cache"):
                self._cache[cache_key] = hosts
        self._populate(hosts)

    def _populate(self, hosts: list[dict[str, Any]]) -> None:
        group = self.inventory.add_group(self.get_option("group"))
        strict = self.get_option("strict")
        naming = self.get_option("hostname")
        for facts in hosts:
            name = {
                "job": facts["oci_job"],
                "display_name": facts["oci_display_name"],
                "target": "target",
            }[naming]
            self.inventory.add_host(name, group=group)
            for key, value in facts.items():
                self.inventory.set_variable(name, key, value)
            address = (
                facts["oci_private_ip"]
                if self.get_option("use_private_ip")
                else facts["oci_public_ip"]
            )
            if address:
                self.inventory.set_variable(name, "ansible_host", address)
            self._set_composite_vars(self.get_option("compose"), facts, name, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), facts, name, strict=strict)
            self._add_host_to_keyed_groups(
                self.get_option("keyed_groups"), facts, name, strict=strict
            )

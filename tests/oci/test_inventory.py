"""The faceswap_oci.core.oci_job inventory plugin via ansible-inventory, against the local API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import oci
import yaml

from tests.ociapi.fixtures import OciApi

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
M = oci.core.models


def launch(
    api: OciApi, job: str, shape: str = "VM.GPU.A10.1", public_ip: str = "192.0.2.10"
) -> str:
    config = oci.config.from_file(str(api.cfg.config_file), api.cfg.profile)
    vn = oci.core.VirtualNetworkClient(config, service_endpoint=api.url)
    compute = oci.core.ComputeClient(config, service_endpoint=api.url)
    tags = {"faceswap-oci-job": job}
    comp = api.cfg.compartment
    vcn = vn.create_vcn(
        M.CreateVcnDetails(compartment_id=comp, cidr_block="10.0.0.0/16", freeform_tags=tags)
    ).data
    subnet = vn.create_subnet(
        M.CreateSubnetDetails(
            compartment_id=comp, vcn_id=vcn.id, cidr_block="10.0.0.0/24", freeform_tags=tags
        )
    ).data
    image = compute.list_images(comp, operating_system="Oracle Linux", shape=shape).data[0]
    api.state.set_public_ip(public_ip, job=job)
    return compute.launch_instance(
        M.LaunchInstanceDetails(
            compartment_id=comp,
            availability_domain=api.state.availability_domains[1],
            shape=shape,
            display_name=f"fsoci-{job}",
            image_id=image.id,
            subnet_id=subnet.id,
            freeform_tags=tags,
        )
    ).data.id


def inventory(api: OciApi, tmp_path: Path, **options: Any) -> dict[str, Any]:
    source = tmp_path / "jobs.oci.yml"
    config = {
        "plugin": "faceswap_oci.core.oci_job",
        "config_file": str(api.cfg.config_file),
        "compartment_id": api.cfg.compartment,
        "service_endpoint": api.url,
        "compose": {"ansible_user": "'opc'"},
        "keyed_groups": [{"key": "oci_shape", "prefix": "shape", "separator": "_"}],
    }
    config.update(options)
    config.update(config_file=str(api.cfg.config_file), compartment_id=api.cfg.compartment)
    config.update(service_endpoint=api.url, region=api.cfg.region)
    source.write_text(yaml.safe_dump(config))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(source), "--list"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return plain(json.loads(proc.stdout))


def plain(value: Any) -> Any:
    """ansible-inventory marks plugin-provided strings as unsafe ({"__ansible_unsafe": ...})."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def test_hosts_by_job_tag_with_public_ip(ociapi: OciApi, tmp_path: Path) -> None:
    demo = launch(ociapi, "demo", "VM.GPU.A10.1", "192.0.2.10")
    launch(ociapi, "other", "VM.GPU3.1", "192.0.2.11")
    inv = inventory(ociapi, tmp_path)
    assert sorted(inv["fsoci_target"]["hosts"]) == ["demo", "other"]
    demo_vars = inv["_meta"]["hostvars"]["demo"]
    assert demo_vars["ansible_host"] == "192.0.2.10"
    assert demo_vars["ansible_user"] == "opc"
    assert (demo_vars["oci_instance_id"], demo_vars["oci_gpu_model"]) == (demo, "NVIDIA A10")
    assert inv["shape_VM_GPU3_1"]["hosts"] == ["other"]

    only = inventory(ociapi, tmp_path, jobs=["demo"], hostname="target")
    assert only["fsoci_target"]["hosts"] == ["target"]
    assert only["_meta"]["hostvars"]["target"]["oci_job"] == "demo"


def test_terminated_instances_are_left_out(ociapi: OciApi, tmp_path: Path) -> None:
    ociapi.state.faults.terminate_s = 0.0
    gone = launch(ociapi, "gone")
    config = oci.config.from_file(str(ociapi.cfg.config_file))
    oci.core.ComputeClient(config, service_endpoint=ociapi.url).terminate_instance(gone)
    inv = inventory(ociapi, tmp_path)
    assert "fsoci_target" not in inv or inv["fsoci_target"].get("hosts", []) == []


def test_cache_answers_without_api_calls(ociapi: OciApi, tmp_path: Path) -> None:
    launch(ociapi, "demo")
    cache = {
        "cache": True,
        "cache_plugin": "ansible.builtin.jsonfile",
        "cache_connection": str(tmp_path / "cache"),
        "cache_timeout": 300,
    }
    first = inventory(ociapi, tmp_path, **cache)
    calls = sum(ociapi.state.calls.values())
    second = inventory(ociapi, tmp_path, **cache)
    assert sum(ociapi.state.calls.values()) == calls
    assert second["_meta"]["hostvars"] == first["_meta"]["hostvars"]


def test_the_example_inventory_works(ociapi: OciApi, tmp_path: Path) -> None:
    launch(ociapi, "demo", public_ip="192.0.2.20")
    example = yaml.safe_load((ROOT / "inventory" / "oci.example.yml").read_text())
    example.update(cache_connection=str(tmp_path / "cache"), cache=False)
    inv = inventory(ociapi, tmp_path, **{k: v for k, v in example.items() if k != "plugin"})
    assert inv["fsoci_target"]["hosts"] == ["target"]
    hostvars = inv["_meta"]["hostvars"]["target"]
    assert (hostvars["ansible_host"], hostvars["ansible_user"]) == ("192.0.2.20", "opc")
    assert (
        hostvars["ansible_ssh_private_key_file"]
        == "~/.local/state/faceswap-oci/jobs/demo/id_ed25519"
    )
    assert inv["shape_VM_GPU_A10_1"]["hosts"] == ["target"]

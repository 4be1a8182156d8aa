"""The test bed itself: several hosts at once, a real play, clean teardown, systemd units."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.testbed import Host, Testbed, TestbedError, ansible_inventory
from tests.testbed.fixtures import SessionTestbed, unavailable

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "testbed" / "data"


def _ansible_playbook() -> str:
    candidate = Path(sys.executable).with_name("ansible-playbook")
    found = str(candidate) if candidate.exists() else shutil.which("ansible-playbook")
    if found is None:
        unavailable("ansible-playbook is not installed (pip install ansible-core)")
    assert found is not None
    return found


def _play(playbook: Path, hosts: list[Host], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps(ansible_inventory(hosts)))
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        # No ControlPersist: the SSH sessions of the play really end when it exits.
        ANSIBLE_SSH_ARGS="-o ControlMaster=no",
        ANSIBLE_NOCOLOR="1",
    )
    proc = subprocess.run(
        [_ansible_playbook(), "-i", str(inventory), str(playbook)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return proc


def _links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return {line.split(":", 2)[1].strip().split("@", 1)[0] for line in out.splitlines()}


def _netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _processes_using(path: Path) -> list[str]:
    """Processes whose command line or root directory is inside *path*."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            root = os.readlink(proc / "root")
        except OSError:
            continue
        if str(path) in cmdline or root.startswith(str(path)):
            found.append(f"{proc.name}: {cmdline.strip()} (root {root})")
    return found


def _mount_points() -> list[str]:
    return [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]


@pytest.mark.testbed
def test_three_hosts_run_a_play_and_leave_nothing_behind(
    testbed: SessionTestbed, tmp_path: Path
) -> None:
    hosts = testbed.up(3)
    made = [testbed.testbed.describe(h.name) for h in hosts]
    assert all(m is not None for m in made)
    assert len({h.address for h in hosts}) == 3

    _play(DATA / "facts.yml", hosts, tmp_path)
    names = sorted(h.name for h in hosts)
    for host in hosts:
        seen = json.loads(host.ssh("cat /root/testbed-play.json").stdout)
        assert seen["hostname"] == host.name
        assert seen["addresses"] == [host.address]
        assert seen["virtualization"] in ("container", "systemd-nspawn")
        assert host.ssh("systemd-detect-virt").stdout.strip() == "systemd-nspawn"
        assert seen["group"] == names
        # The image: rsync for the upload phase; python3-venv is left for a role to install.
        assert host.ssh("rsync --version", check=False).returncode == 0
        venv = host.ssh("dpkg-query -W -f='${Status}' python3-venv", check=False).stdout
        assert "install ok installed" not in venv
        # No way out of the machine: link-local only, no default route.
        assert host.ssh("ip -4 route show default").stdout.strip() == ""

    testbed.down(hosts)

    netns, links, mounts = _netns(), _links(), _mount_points()
    for host, state in zip(hosts, made, strict=True):
        assert state is not None
        host_dir = Path(state["rootfs"]).parent
        assert state["netns"] not in netns
        assert not Path("/run/netns", state["netns"]).exists()
        assert state["veth"] not in links
        assert not host_dir.exists()
        assert not [m for m in mounts if m.startswith(str(host_dir))]
        assert _processes_using(host_dir) == []
        assert testbed.testbed.describe(host.name) is None
    if not testbed.testbed.host_names():
        # The last host took the shared pieces with it.
        assert testbed.testbed.bridge not in links
        assert not [n for n in netns if n.startswith(testbed.testbed.netns_prefix)]
        assert testbed.testbed.status()["proxy"] is None


@pytest.mark.testbed
def test_a_captured_layer_starts_new_hosts_with_its_changes_and_their_own_identity(
    testbed: SessionTestbed,
) -> None:
    bed = testbed.testbed
    layer = f"t{os.getpid()}-layer"
    (builder,) = testbed.up(1)
    builder_key = builder.ssh("cat /etc/ssh/ssh_host_ed25519_key.pub").stdout
    builder.ssh(
        "echo kept > /opt/marker && rm /etc/motd && mkdir -p /srv/deep/dir && "
        "echo nested > /srv/deep/dir/file && systemctl enable --quiet ssh"
    )
    try:
        testbed.capture(builder, layer)
        assert bed.describe(builder.name) is None  # the builder is gone, its changes kept
        assert layer in bed.layers()
        hosts = testbed.up(2, layer=layer)
        for host in hosts:
            assert host.ssh("hostname").stdout.strip() == host.name
            assert host.ssh("cat /opt/marker /srv/deep/dir/file").stdout.split() == [
                "kept",
                "nested",
            ]
            # A file the builder deleted stays deleted (the layer's whiteout is honoured).
            assert host.ssh("test -e /etc/motd", check=False).returncode == 1
            assert host.ssh("cat /etc/ssh/ssh_host_ed25519_key.pub").stdout != builder_key
            assert (bed.describe(host.name) or {}).get("layer") == layer
        ids = {h.ssh("cat /etc/machine-id").stdout for h in hosts}
        assert len(ids) == 2
        # A host's writes land in its own upper layer, not in the shared one.
        hosts[0].ssh("echo mine > /opt/marker")
        assert hosts[1].ssh("cat /opt/marker").stdout.strip() == "kept"
        with pytest.raises(TestbedError, match="in use by"):
            bed.drop_layer(layer)
        testbed.down(hosts)
    finally:
        bed.drop_layer(layer)
    assert layer not in bed.layers()
    with pytest.raises(TestbedError, match="no layer"):
        bed.up(["never"], layer=layer)


def _proxy_processes(bed: Testbed) -> list[str]:
    return [p for p in _processes_using(bed.proxy_dir) if "apt-cacher-ng" in p]


@pytest.mark.testbed
def test_down_all_removes_everything_of_its_own_test_bed_only(
    testbed: SessionTestbed, tmp_path: Path
) -> None:
    main = testbed.testbed
    (bystander,) = testbed.up(1)
    # A second, separate test bed (own bridge, subnet, names, proxy and state) sharing the cache.
    other = Testbed(tmp_path / "state", instance=7, cache_dir=main.cache_dir)
    try:
        hosts = other.up(["alpha", "beta"])
        assert [h.address for h in hosts] == ["169.254.84.10", "169.254.84.11"]
        assert hosts[0].ssh("hostname").stdout.strip() == "alpha"
        made = [other.describe(h.name) for h in hosts]
        assert other.bridge in _links()
        assert _proxy_processes(other)
        other.down_all()
    finally:
        if other.host_names():
            other.down_all()

    netns, links = _netns(), _links()
    assert other.bridge not in links
    assert not [n for n in netns if n.startswith(other.netns_prefix)]
    assert not [link for link in links if link.startswith(other.veth_prefix)]
    for state in made:
        assert state is not None
        assert not Path(state["rootfs"]).parent.exists()
    assert _processes_using(other.root / "hosts") == []
    assert _proxy_processes(other) == []
    assert not [m for m in _mount_points() if m.startswith(str(other.root))]
    # The usual test bed and its host were not touched.
    assert main.bridge in links
    assert main.describe(bystander.name) is not None
    assert bystander.ssh("systemctl is-system-running --wait", check=False).stdout.strip() in (
        "running",
        "degraded",
    )


@pytest.mark.testbed
def test_unit_survives_its_ssh_session_and_stops_with_sigint(
    testbed_host: Host, tmp_path: Path
) -> None:
    _play(DATA / "unit.yml", [testbed_host], tmp_path)

    first = testbed_host.ssh("systemctl show -p MainPID --value testbed-unit").stdout.strip()
    assert first.isdigit() and int(first) > 0
    # A new SSH session: the same process still runs, parented by systemd, not by sshd.
    second = testbed_host.ssh("systemctl show -p MainPID --value testbed-unit").stdout.strip()
    assert second == first
    assert testbed_host.ssh(f"ps -o ppid= -p {first}").stdout.strip() == "1"
    assert testbed_host.ssh("systemctl is-active testbed-unit").stdout.strip() == "active"

    testbed_host.ssh("systemctl stop testbed-unit")

    marker = testbed_host.ssh("cat /var/lib/testbed-unit/sigint").stdout.strip()
    assert marker == f"SIGINT pid={first}"
    assert testbed_host.ssh("test -e /var/lib/testbed-unit/sigint.term", check=False).returncode
    result = testbed_host.ssh("systemctl show -p Result --value testbed-unit").stdout.strip()
    assert result == "success"


def _cli(*args: str, env: dict[str, str] | None = None, as_nobody: bool = False):
    argv = ["/usr/bin/python3", "-m", "tests.testbed", *args]
    if as_nobody:
        argv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *argv]
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def test_cli_refuses_when_not_root() -> None:
    if not Path("/usr/bin/python3").exists():
        pytest.skip("needs /usr/bin/python3 (the CLI's standard-library-only interpreter)")
    as_nobody = os.geteuid() == 0
    if as_nobody and shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to drop root for this test")
    for args in (["up", "refused"], ["down", "--all"], ["status"]):
        proc = _cli(*args, as_nobody=as_nobody)
        assert proc.returncode == 1, proc
        assert "must run as root" in proc.stderr
        assert proc.stdout == ""


def test_cli_names_the_package_of_a_missing_tool(tmp_path: Path) -> None:
    if os.geteuid() != 0 or not Path("/usr/bin/python3").exists():
        pytest.skip("the missing-package message is only reached as root")
    env = {"PATH": str(tmp_path), "FSOCI_TESTBED_DIR": str(tmp_path / "state")}
    proc = _cli("up", "refused", env=env)
    assert proc.returncode == 1
    assert "apt-get install" in proc.stderr
    for package in ("iproute2", "systemd-container", "apt-cacher-ng", "zstd"):
        assert package in proc.stderr
    assert not (tmp_path / "state").exists()


SKIP_OR_FAIL = """
def test_needs_a_host(testbed_host):
    raise AssertionError("unreachable: the fixture must not provide a host here")
"""


@pytest.mark.parametrize(
    ("required", "outcome"),
    [("", "1 skipped"), ("1", "1 error")],
)
def test_fixture_skips_or_fails_where_hosts_cannot_run(
    tmp_path: Path, required: str, outcome: str
) -> None:
    (tmp_path / "test_probe.py").write_text(SKIP_OR_FAIL)
    env = {
        # No ip, systemd-nspawn, ... on PATH: the machine "cannot run hosts".
        "PATH": str(tmp_path),
        "PYTHONPATH": str(REPO),
        "FSOCI_TESTBED_DIR": str(tmp_path / "state"),
        "FSOCI_REQUIRE_TESTBED": required,
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.testbed.fixtures",
            "-p",
            "no:cacheprovider",
            "-c",
            os.devnull,
            "--rootdir",
            str(tmp_path),
            "-rA",
            str(tmp_path / "test_probe.py"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert outcome in proc.stdout, proc.stdout[-3000:]
    if required:
        assert "FSOCI_REQUIRE_TESTBED=1 but the test bed cannot run" in proc.stdout
    else:
        assert "test bed unavailable: cannot run test hosts here" in proc.stdout
    assert not (tmp_path / "state").exists()

"""Booted Debian test hosts: systemd-nspawn containers in their own network namespaces.

Standard library only, so the CLI also runs under the system Python (the non-root refusal
test runs it as ``nobody``, who cannot reach the project's virtual environment).

Everything the tool makes carries its own names and lives in its own range:
network namespaces ``fsoci-tb-<name>``, host-side veths ``fsoci-v<octet>``, the bridge
``fsocitb0`` holding 169.254.77.1/24 (and 169.254.169.254/32, where the OCI double's instance
metadata service binds), one apt-cacher-ng bound to that address, and files under
the state directory (``$FSOCI_TESTBED_DIR``, default ``/var/tmp/faceswap-oci-testbed``).
Instances 1-9 (``$FSOCI_TESTBED_INSTANCE``) are separate test beds with their own names,
subnet 169.254.(77+n).0/24 and state directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

SUITE = "bookworm"
VARIANT = "minbase"
# python3-venv is deliberately absent: installing it is a role's job.
PACKAGES: tuple[str, ...] = (
    "ca-certificates",
    "dbus",
    "iproute2",
    "openssh-server",
    "python3",
    "rsync",
    "sudo",
    "systemd",
    "systemd-sysv",
)
# Bump when the post-debootstrap recipe changes, so cached tarballs are rebuilt.
RECIPE_VERSION = 1

SUBNET = ipaddress.IPv4Network("169.254.77.0/24")
BRIDGE = "fsocitb0"
BRIDGE_ADDRESS = "169.254.77.1"
IMDS_ADDRESS = "169.254.169.254"  # OCI's instance metadata service (the double's, on the bridge)
NETNS_PREFIX = "fsoci-tb-"
VETH_PREFIX = "fsoci-v"
FIRST_OCTET, LAST_OCTET = 10, 250
# Not apt-cacher-ng's usual 3142: a system instance of it may already listen on 0.0.0.0:3142.
PROXY_PORT = 3942
SSH_PORT = 22
SSH_USER = "root"
BOOT_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY_MIRROR = "http://deb.debian.org/debian-security"
SSH_OPTIONS: tuple[str, ...] = (
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "BatchMode=yes",
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "ConnectTimeout=10",
)

# Per-host files that a captured layer must not carry (each host writes its own).
IDENTITY_FILES: tuple[str, ...] = (
    "etc/hostname",
    "etc/hosts",
    "etc/machine-id",
    "var/lib/dbus/machine-id",
    "root/.ssh/authorized_keys",
)

# command -> Debian package that provides it
PREREQUISITES: dict[str, str] = {
    "ip": "iproute2",
    "systemd-nspawn": "systemd-container",
    "apt-cacher-ng": "apt-cacher-ng",
    "zstd": "zstd",
    "tar": "tar",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "unshare": "util-linux",
    "mount": "mount",
}
BUILD_PREREQUISITES: dict[str, str] = {"debootstrap": "debootstrap"}


class TestbedError(RuntimeError):
    """Something the test bed tried failed; the message says what and what to do."""

    __test__ = False  # not a pytest test class


class TestbedUnsupported(TestbedError):
    """This machine cannot run test hosts (not root, a tool or kernel feature is missing)."""

    __test__ = False  # not a pytest test class


@dataclasses.dataclass(frozen=True)
class Host:
    """A booted test host, reachable over SSH from this machine."""

    name: str
    address: str
    port: int
    user: str
    key_path: str

    def ssh_command(self, command: str | Sequence[str] | None = None) -> list[str]:
        """The ``ssh`` argv that runs *command* on the host (a login shell when None)."""
        argv = ["ssh", *SSH_OPTIONS, "-i", self.key_path, "-p", str(self.port)]
        argv.append(f"{self.user}@{self.address}")
        if command is not None:
            argv.append(command if isinstance(command, str) else shlex.join(command))
        return argv

    def ssh(
        self, command: str | Sequence[str], *, check: bool = True, timeout: float = 300.0
    ) -> subprocess.CompletedProcess[str]:
        """Run *command* on the host over a fresh SSH session and capture its output."""
        return subprocess.run(
            self.ssh_command(command),
            check=check,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def job_target(self) -> dict[str, Any]:
        """This host as a faceswap-oci job's ``target`` (kind ssh; host keys not checked,
        since a test host gets fresh keys whenever it is made again)."""
        return {
            "kind": "ssh",
            "ssh": {
                "host": self.address,
                "port": self.port,
                "user": self.user,
                "key": self.key_path,
                "host_key_checking": "off",
            },
        }

    def host_vars(self) -> dict[str, Any]:
        """Ansible connection variables for this host."""
        return {
            "ansible_host": self.address,
            "ansible_port": self.port,
            "ansible_user": self.user,
            "ansible_ssh_private_key_file": self.key_path,
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no "
            "-o UserKnownHostsFile=/dev/null",
            # Discovery, as the runner does for ssh targets: a host shaped like Oracle Linux 9
            # (tests/testbed/variants.py) has a 3.9 /usr/bin/python3 beside python3.11.
            "ansible_python_interpreter": "auto_silent",
        }

    def ansible_inventory(self, group: str = "all") -> dict[str, Any]:
        """A YAML/JSON inventory with this host alone (see :func:`ansible_inventory`)."""
        return ansible_inventory([self], group=group)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def ansible_inventory(hosts: Sequence[Host], group: str = "all") -> dict[str, Any]:
    """An inventory (as data, dump it to JSON or YAML) holding *hosts* in *group*."""
    members = {h.name: h.host_vars() for h in hosts}
    if group == "all":
        return {"all": {"hosts": members}}
    return {"all": {"children": {group: {"hosts": members}}}}


def state_dir() -> Path:
    return Path(os.environ.get("FSOCI_TESTBED_DIR", "/var/tmp/faceswap-oci-testbed"))


def _run(argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise TestbedError(
            f"`{shlex.join(argv)}` exited {proc.returncode}: "
            f"{(proc.stderr or proc.stdout).strip()[-2000:]}"
        )
    return proc


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as dead.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _pid_cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _stop_pid(pid: int, marker: str, timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM *pid* (only if its command line mentions *marker*), then SIGKILL after timeout."""
    if not _pid_alive(pid) or marker not in " ".join(_pid_cmdline(pid)):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not _pid_alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for _ in range(50):
        _reap(pid)
        if not _pid_alive(pid):
            return
        time.sleep(0.1)


def _tcp_banner(address: str, port: int, timeout: float = 1.0) -> bytes:
    with socket.create_connection((address, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        return sock.recv(64)


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve())
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mount_point = line.split()[4].replace("\\040", " ")
        if mount_point == prefix or mount_point.startswith(prefix + "/"):
            found.append(mount_point)
    return found


def machine_mirrors() -> tuple[str, str]:
    """The Debian archive and security mirrors this machine's apt uses (http or https)."""
    archive, security = DEFAULT_MIRROR, DEFAULT_SECURITY_MIRROR
    texts = []
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        with contextlib.suppress(OSError):
            texts.append(path.read_text())
    found_archive = found_security = None
    for text in texts:
        for uri in re.findall(r"(?:URIs:\s*|^deb\s+(?:\[[^]]*\]\s+)?)(https?://\S+)", text, re.M):
            uri = uri.rstrip("/")
            if uri.endswith("/debian-security") and found_security is None:
                found_security = uri
            elif uri.endswith("/debian") and found_archive is None:
                found_archive = uri
    return found_archive or archive, found_security or security


class Testbed:
    """Makes, lists and removes test hosts. All mutating calls hold one file lock."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        root: Path | None = None,
        *,
        instance: int | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        """*instance* 0 (default, or ``$FSOCI_TESTBED_INSTANCE``) is the machine's usual test bed;
        1-9 are separate ones with their own bridge, subnet 169.254.(77+n).0/24, names, proxy port
        and (by default) state directory, e.g. to test ``down --all`` beside running hosts."""
        if instance is None:
            instance = int(os.environ.get("FSOCI_TESTBED_INSTANCE", "0") or 0)
        if not 0 <= instance <= 9:
            raise TestbedError(f"test-bed instance {instance} is out of range: use 0-9")
        self.instance = instance
        self.subnet = ipaddress.IPv4Network(f"169.254.{77 + instance}.0/24")
        self.bridge = f"fsocitb{instance}"
        self.bridge_address = str(self.subnet.network_address + 1)
        self.netns_prefix = NETNS_PREFIX if instance == 0 else f"fsoci-tb{instance}-"
        self.veth_prefix = VETH_PREFIX if instance == 0 else f"fsoci{instance}v"
        self.proxy_port = PROXY_PORT + instance
        if root is None:
            root = state_dir() if instance == 0 else Path(f"{state_dir()}-{instance}")
        self.root = root
        self.cache_dir = cache_dir or self.root / "cache"
        self.hosts_dir = self.root / "hosts"
        # Captured host changes (e.g. "Faceswap installed"), stacked over the rootfs of the
        # recipe they were made on: layers/<rootfs key>/<layer name>/.
        self.layers_dir = self.cache_dir / "layers" / self.rootfs_key()
        self.proxy_dir = self.root / "apt-cacher-ng"
        self.key_path = self.root / "ssh" / "id_ed25519"

    # ---------------------------------------------------------------- checks
    @staticmethod
    def missing_prerequisites(*, build: bool = False) -> list[str]:
        """Human-readable reasons this machine cannot run hosts; empty when it can."""
        reasons = []
        if os.geteuid() != 0:
            reasons.append(
                "the test bed must run as root (it creates network namespaces, a bridge "
                "and systemd-nspawn containers); run it with sudo or as root"
            )
        needed = dict(PREREQUISITES)
        if build:
            needed.update(BUILD_PREREQUISITES)
        missing_pkgs = sorted({pkg for cmd, pkg in needed.items() if shutil.which(cmd) is None})
        if missing_pkgs:
            missing_cmds = sorted(cmd for cmd, pkg in needed.items() if pkg in missing_pkgs)
            reasons.append(
                f"missing commands {', '.join(missing_cmds)}: "
                f"apt-get install {' '.join(missing_pkgs)}"
            )
        if not Path("/proc/self/ns/net").exists():
            reasons.append("the kernel has no network namespaces (/proc/self/ns/net is absent)")
        return reasons

    def require(self, *, build: bool = False) -> None:
        reasons = self.missing_prerequisites(build=build)
        if reasons:
            raise TestbedUnsupported("cannot run test hosts here: " + "; ".join(reasons))

    # ---------------------------------------------------------------- locking
    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # ---------------------------------------------------------------- rootfs
    @staticmethod
    def rootfs_key() -> str:
        recipe: dict[str, Any] = {
            "suite": SUITE,
            "variant": VARIANT,
            "packages": sorted(PACKAGES),
            "recipe": RECIPE_VERSION,
        }
        return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]

    def rootfs_tarball(self) -> Path:
        return self.cache_dir / f"rootfs-{SUITE}-{self.rootfs_key()}.tar.zst"

    def build(self, *, force: bool = False) -> tuple[Path, float | None]:
        """Build the cached rootfs tarball if absent; returns (path, seconds or None if cached)."""
        self.require(build=not self.rootfs_tarball().exists() or force)
        with self._lock():
            return self._build_locked(force=force)

    def _build_locked(self, *, force: bool = False) -> tuple[Path, float | None]:
        tarball = self.rootfs_tarball()
        if tarball.exists() and not force:
            return tarball, None
        if shutil.which("debootstrap") is None:
            raise TestbedUnsupported(
                "building the test-host rootfs needs debootstrap: apt-get install debootstrap"
            )
        started = time.monotonic()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        mirror, _ = machine_mirrors()
        work = Path(tempfile.mkdtemp(prefix="build-", dir=self.cache_dir))
        target = work / "rootfs"
        try:
            _run(
                [
                    "debootstrap",
                    f"--variant={VARIANT}",
                    "--include=" + ",".join(PACKAGES),
                    SUITE,
                    str(target),
                    mirror,
                ]
            )
            self._finish_rootfs(target)
            partial = tarball.with_suffix(".partial")
            _run(
                [
                    "tar",
                    "--numeric-owner",
                    "--xattrs",
                    "--xattrs-include=*",
                    "-I",
                    "zstd -T0 -3",
                    "-C",
                    str(target),
                    "-cf",
                    str(partial),
                    ".",
                ]
            )
            partial.replace(tarball)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        template = self._template_dir()
        if template.exists() and not self.host_names():
            shutil.rmtree(template)  # rebuilt with --force: unpack the new tarball next time
        for stale in self.cache_dir.glob(f"rootfs-{SUITE}-*.tar.zst"):
            if stale != tarball:
                stale.unlink()
        return tarball, time.monotonic() - started

    @staticmethod
    def _finish_rootfs(target: Path) -> None:
        """Turn a fresh debootstrap tree into a host template: no identity, SSH by key only."""
        for key in (target / "etc" / "ssh").glob("ssh_host_*"):
            key.unlink()
        (target / "etc" / "machine-id").write_text("")
        dbus_id = target / "var" / "lib" / "dbus" / "machine-id"
        if dbus_id.exists() or dbus_id.is_symlink():
            dbus_id.unlink()
        (target / "etc" / "ssh" / "sshd_config.d").mkdir(parents=True, exist_ok=True)
        (target / "etc" / "ssh" / "sshd_config.d" / "testbed.conf").write_text(
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\nUseDNS no\nMaxStartups 64:30:128\n"
        )
        # The hosts have no route out; apt goes through the proxy on the bridge (per host).
        (target / "etc" / "apt" / "sources.list").write_text(
            f"deb {DEFAULT_MIRROR} {SUITE} main\n"
            f"deb {DEFAULT_MIRROR} {SUITE}-updates main\n"
            f"deb {DEFAULT_SECURITY_MIRROR} {SUITE}-security main\n"
        )
        # Units that only wait for things the hosts never have.
        wants = target / "etc" / "systemd" / "system"
        for unit in (
            "systemd-networkd-wait-online.service",
            "apt-daily.timer",
            "apt-daily-upgrade.timer",
            "e2scrub_all.timer",
            "fstrim.timer",
        ):
            mask = wants / unit
            if not mask.exists() and not mask.is_symlink():
                mask.symlink_to("/dev/null")
        _run(["chroot", str(target), "apt-get", "clean"])

    # ---------------------------------------------------------------- key
    def ensure_key(self) -> Path:
        if not self.key_path.exists():
            self.key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            _run(
                [
                    "ssh-keygen",
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    "faceswap-oci-testbed",
                    "-f",
                    str(self.key_path),
                ]
            )
        return self.key_path

    # ---------------------------------------------------------------- state
    def _host_dir(self, name: str) -> Path:
        return self.hosts_dir / name

    def _read_state(self, name: str) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads((self._host_dir(name) / "state.json").read_text())
        except (OSError, ValueError):
            return None
        return data

    def _write_state(self, name: str, data: dict[str, Any]) -> None:
        path = self._host_dir(name) / "state.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(path)

    def link_of(self, name: str) -> str:
        """The host's veth on this machine's side: its egress is the traffic to the host
        (benchmarks shape it with ``tc`` to model a slower link)."""
        data = self._read_state(name)
        if data is None:
            raise TestbedError(f"no test host named {name!r}")
        return str(data["veth"])

    def host_names(self) -> list[str]:
        if not self.hosts_dir.is_dir():
            return []
        return sorted(p.name for p in self.hosts_dir.iterdir() if p.is_dir())

    def _host_from_state(self, data: dict[str, Any]) -> Host:
        return Host(
            name=data["name"],
            address=data["address"],
            port=SSH_PORT,
            user=SSH_USER,
            key_path=str(self.key_path),
        )

    def _running(self, data: dict[str, Any]) -> bool:
        pid = data.get("pid")
        return (
            isinstance(pid, int)
            and _pid_alive(pid)
            and "systemd-nspawn" in " ".join(_pid_cmdline(pid))
        )

    # ---------------------------------------------------------------- shared network
    def _bridge_exists(self) -> bool:
        return _run(["ip", "link", "show", "dev", self.bridge], check=False).returncode == 0

    def _ensure_bridge(self) -> None:
        if not self._bridge_exists():
            _run(["ip", "link", "add", self.bridge, "type", "bridge"])
        addrs = _run(["ip", "-4", "-o", "addr", "show", "dev", self.bridge]).stdout
        if f"{self.bridge_address}/" not in addrs:
            _run(
                [
                    "ip",
                    "addr",
                    "add",
                    f"{self.bridge_address}/{self.subnet.prefixlen}",
                    "dev",
                    self.bridge,
                ]
            )
        if f"{IMDS_ADDRESS}/32" not in addrs:
            # The OCI double's instance metadata service binds here (tests/ociapi/identity.py):
            # on this tool's own bridge, so only its hosts reach it, as on an OCI instance.
            _run(["ip", "addr", "add", f"{IMDS_ADDRESS}/32", "dev", self.bridge])
        _run(["ip", "link", "set", self.bridge, "up"])

    def _proxy_pid(self) -> int | None:
        try:
            pid = int((self.proxy_dir / "pid").read_text())
        except (OSError, ValueError):
            return None
        if _pid_alive(pid) and str(self.proxy_dir) in " ".join(_pid_cmdline(pid)):
            return pid
        return None

    def _ensure_proxy(self) -> None:
        """Start this tool's own apt-cacher-ng on the bridge address (hosts' only way out)."""
        if self._proxy_pid() is not None:
            return
        with contextlib.suppress(OSError):
            socket.create_connection((self.bridge_address, self.proxy_port), timeout=0.5).close()
            raise TestbedError(
                f"something else already listens on {self.bridge_address}:{self.proxy_port}; "
                "find it with `ss -ltnp` and stop it"
            )
        conf = self.proxy_dir / "conf"
        for sub in ("conf", "cache", "log"):
            (self.proxy_dir / sub).mkdir(parents=True, exist_ok=True)
        archive, security = machine_mirrors()
        (conf / "backends_debian").write_text(archive + "/\n")
        (conf / "backends_debian_security").write_text(security + "/\n")
        lines = [
            f"CacheDir: {self.proxy_dir / 'cache'}",
            f"LogDir: {self.proxy_dir / 'log'}",
            "SupportDir: /usr/lib/apt-cacher-ng",
            f"Port: {self.proxy_port}",
            f"SocketPath: {self.proxy_dir / 'socket'}",
            f"BindAddress: {self.bridge_address}",
            "ForeGround: 1",
            "Remap-debrep: file:deb_mirror*.gz /debian ; file:backends_debian",
            "Remap-secdeb: security.debian.org security.debian.org/debian-security "
            "deb.debian.org/debian-security /debian-security ; file:backends_debian_security",
            # CONNECT pass-through, so pip inside a host can reach the Python package index.
            r"PassThroughPattern: ^(pypi\.org|files\.pythonhosted\.org):443$",
            "ExThreshold: 4",
            "VerboseLog: 1",
        ]
        upstream = os.environ.get("http_proxy") or os.environ.get("HTTP_PROXY")
        if upstream:
            lines.append(f"Proxy: {upstream}")
        (conf / "acng.conf").write_text("\n".join(lines) + "\n")
        log = open(self.proxy_dir / "log" / "stdout.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            ["apt-cacher-ng", "-c", str(conf), f"PidFile={self.proxy_dir / 'acng.pid'}"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        (self.proxy_dir / "pid").write_text(str(proc.pid))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise TestbedError(
                    f"apt-cacher-ng exited {proc.returncode}; see {self.proxy_dir / 'log'}"
                )
            with contextlib.suppress(OSError):
                socket.create_connection(
                    (self.bridge_address, self.proxy_port), timeout=0.5
                ).close()
                return
            time.sleep(0.1)
        raise TestbedError(
            f"apt-cacher-ng did not listen on {self.bridge_address}:{self.proxy_port}"
        )

    def _teardown_shared(self) -> None:
        pid = self._proxy_pid()
        if pid is not None:
            _stop_pid(pid, str(self.proxy_dir), timeout=5)
        with contextlib.suppress(OSError):
            (self.proxy_dir / "pid").unlink()
        if self._bridge_exists():
            _run(["ip", "link", "del", self.bridge], check=False)
        self._prune_templates()

    # ---------------------------------------------------------------- up
    def _template_dir(self) -> Path:
        return self.cache_dir / self.rootfs_tarball().name.removesuffix(".tar.zst")

    def _ensure_template(self, tarball: Path) -> Path:
        """The rootfs unpacked once: the read-only lower layer of every host's overlay."""
        template = self._template_dir()
        if template.is_dir():
            return template
        partial = template.with_name(template.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        _run(
            [
                "tar",
                "--numeric-owner",
                "--xattrs",
                "--xattrs-include=*",
                "-I",
                "zstd",
                "-C",
                str(partial),
                "-xf",
                str(tarball),
            ]
        )
        partial.rename(template)
        self._prune_templates()
        return template

    def _prune_templates(self) -> None:
        """Remove unpacked rootfs trees of other recipes, unless a running host sits on one."""
        if self.host_names():
            return
        keep = self._template_dir()
        for stale in self.cache_dir.glob(f"rootfs-{SUITE}-*"):
            if stale.is_dir() and stale != keep:
                shutil.rmtree(stale, ignore_errors=True)
        for stale in self.layers_dir.parent.glob("*"):
            if stale.is_dir() and stale != self.layers_dir:
                shutil.rmtree(stale, ignore_errors=True)  # layers made on another rootfs

    def up(
        self, names: Sequence[str], *, session_pid: int | None = None, layer: str | None = None
    ) -> list[Host]:
        """Boot the named hosts (reusing running ones) and return them once SSH answers.

        With *session_pid* the hosts belong to that process (a pytest session): once it is gone
        (even killed with SIGKILL), the next ``up`` on this machine removes them. With *layer*
        the hosts start from that captured layer (see :meth:`capture`) over the rootfs.
        """
        names = list(dict.fromkeys(names))
        lower = self.layer_dir(layer) if layer is not None else None
        if lower is not None and not lower.is_dir():
            raise TestbedError(f"no layer {layer!r} in {self.layers_dir}; make one with `capture`")
        for name in names:
            if not NAME_RE.match(name):
                raise TestbedError(
                    f"host name {name!r} is invalid: use 1-40 lowercase letters, digits or "
                    "'-', starting with a letter"
                )
        self.require(build=not self.rootfs_tarball().exists())
        if any(c in str(self.root) for c in ",:\\ "):
            raise TestbedError(f"state directory {self.root} must not contain ',', ':' or spaces")
        to_create: list[str] = []
        to_wait: list[str] = []
        # Shared pieces and address reservations under the lock; the per-host work (overlay,
        # boot, SSH wait) runs outside it, so parallel sessions don't queue behind each other.
        with self._lock():
            tarball, _ = self._build_locked()
            template = self._ensure_template(tarball)
            self.ensure_key()
            self._ensure_bridge()
            self._ensure_proxy()
            self._reap_orphans()
            for name in names:
                data = self._read_state(name)
                if data is not None and self._running(data):
                    continue
                if (
                    data is not None
                    and data.get("pid") is None
                    and _pid_alive(int(data.get("owner", 0) or 0))
                ):
                    to_wait.append(name)  # another process is booting it right now
                    continue
                if data is not None or self._host_dir(name).exists():
                    self._down_locked(name)
                self._reserve(name, session_pid)
                to_create.append(name)
        try:
            for name in to_create:
                self._create(name, template, lower)
            hosts = []
            for name in names:
                data = self._wait_started(name) if name in to_wait else self._read_state(name)
                if data is None:
                    raise TestbedError(f"host {name} vanished while booting (removed by `down`?)")
                self._wait_ready(data)
                hosts.append(self._host_from_state(data))
        except BaseException:
            if to_create:
                with self._lock():
                    for name in to_create:
                        self._down_locked(name)
                    if not self.host_names():
                        self._teardown_shared()
            raise
        return hosts

    def _wait_started(self, name: str) -> dict[str, Any] | None:
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while time.monotonic() < deadline:
            data = self._read_state(name)
            if data is None or data.get("pid") is not None:
                return data
            if not _pid_alive(int(data.get("owner", 0) or 0)):
                raise TestbedError(f"the process that was starting host {name} died; run `up`")
            time.sleep(0.2)
        raise TestbedError(f"host {name} is still being started by another process")

    def _allocate_octet(self) -> int:
        used = set()
        for other in self.host_names():
            data = self._read_state(other)
            if data is not None:
                used.add(int(data["octet"]))
        for octet in range(FIRST_OCTET, LAST_OCTET + 1):
            if octet not in used:
                return octet
        raise TestbedError(f"no free address left in {self.subnet} (hosts: {len(used)})")

    def _reap_orphans(self) -> None:
        for name in self.host_names():
            data = self._read_state(name)
            session = data.get("session_pid") if data else None
            if isinstance(session, int) and not _pid_alive(session):
                self._down_locked(name)

    def _reserve(self, name: str, session_pid: int | None = None) -> None:
        octet = self._allocate_octet()
        host_dir = self._host_dir(name)
        host_dir.mkdir(parents=True)
        self._write_state(
            name,
            {
                "name": name,
                "octet": octet,
                "address": str(self.subnet.network_address + octet),
                "netns": self.netns_prefix + name,
                "veth": f"{self.veth_prefix}{octet}",
                "rootfs": str(host_dir / "rootfs"),
                "upper": str(host_dir / "upper"),
                "pid": None,
                "owner": os.getpid(),
                "session_pid": session_pid,
                "created": time.time(),
            },
        )

    def _create(self, name: str, template: Path, layer: Path | None = None) -> None:
        data = self._read_state(name)
        assert data is not None
        host_dir = self._host_dir(name)
        for sub in ("rootfs", "upper", "work"):
            (host_dir / sub).mkdir()
        lowers = [template] if layer is None else [layer, template]
        data["layer"] = None if layer is None else layer.name
        self._personalise(lowers, Path(data["upper"]), name, data["address"])
        self._make_network(data["netns"], data["veth"], data["address"])
        data["pid"] = self._boot(name, lowers, host_dir, data["netns"])
        self._write_state(name, data)

    def _personalise(self, lowers: Sequence[Path], upper: Path, name: str, address: str) -> None:
        """Write the host's own files into its overlay's upper layer before it boots."""

        def put(rel: str, text: str, mode: int = 0o644) -> None:
            path = upper / rel
            # Directories in the upper layer hide the lower ones' owner and mode: copy them
            # from the topmost lower layer that has the directory.
            parts = Path(rel).parent.parts
            for i in range(1, len(parts) + 1):
                sub = Path(*parts[:i])
                made = upper / sub
                lower = next((d / sub for d in lowers if (d / sub).is_dir()), lowers[-1] / sub)
                if not made.exists():
                    made.mkdir()
                    st = lower.stat() if lower.exists() else None
                    os.chmod(made, st.st_mode & 0o7777 if st else 0o755)
                    if st:
                        os.chown(made, st.st_uid, st.st_gid)
            path.write_text(text)
            os.chmod(path, mode)

        put("etc/hostname", name + "\n")
        put("etc/hosts", f"127.0.0.1\tlocalhost\n{address}\t{name}\n::1\tlocalhost ip6-localhost\n")
        put("etc/machine-id", os.urandom(16).hex() + "\n", 0o444)
        put("root/.ssh/authorized_keys", Path(str(self.key_path) + ".pub").read_text(), 0o600)
        os.chmod(upper / "root" / ".ssh", 0o700)
        # One fresh host key (ed25519 only: RSA key generation costs seconds per host).
        put("etc/ssh/sshd_config.d/testbed-hostkey.conf", "HostKey /etc/ssh/ssh_host_ed25519_key\n")
        _run(
            [
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                f"root@{name}",
                "-f",
                str(upper / "etc" / "ssh" / "ssh_host_ed25519_key"),
            ]
        )
        proxy = f"http://{self.bridge_address}:{self.proxy_port}"
        put(
            "etc/apt/apt.conf.d/01testbed-proxy",
            f'Acquire::http::Proxy "{proxy}";\nAcquire::https::Proxy "{proxy}";\n'
            'Acquire::Retries "3";\n',
        )
        put(
            "etc/pip.conf",
            f"[global]\nproxy = {proxy}\ncert = /etc/ssl/certs/ca-certificates.crt\n",
        )
        put("etc/resolv.conf", "# test host: no DNS; apt and pip go through the proxy\n")
        # This machine's CAs (some networks intercept TLS), kept across update-ca-certificates.
        local_cas = Path("/usr/local/share/ca-certificates")
        if local_cas.is_dir():
            for ca in sorted(local_cas.rglob("*.crt")):
                put(f"usr/local/share/ca-certificates/{ca.relative_to(local_cas)}", ca.read_text())
        bundle = Path("/etc/ssl/certs/ca-certificates.crt")
        if bundle.exists():
            put("etc/ssl/certs/ca-certificates.crt", bundle.read_text())

    def _make_network(self, netns: str, veth: str, address: str) -> None:
        # A removed host's MAC may still sit in the bridge's neighbour table for its address.
        _run(["ip", "neigh", "flush", "to", address, "dev", self.bridge], check=False)
        _run(["ip", "netns", "add", netns])
        _run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns])
        _run(["ip", "link", "set", veth, "master", self.bridge, "up"])
        _run(["ip", "-n", netns, "link", "set", "lo", "up"])
        _run(
            ["ip", "-n", netns, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", "eth0"]
        )
        _run(["ip", "-n", netns, "link", "set", "eth0", "up"])
        # Deliberately no default route: nothing may leave the machine from a test host. Only
        # the metadata address is reachable beyond the subnet, on the bridge, as OCI's IMDS is.
        _run(["ip", "-n", netns, "route", "add", f"{IMDS_ADDRESS}/32", "dev", "eth0"])

    @staticmethod
    def _boot(name: str, lowers: Sequence[Path], host_dir: Path, netns: str) -> int:
        Path("/run/systemd/nspawn").mkdir(parents=True, exist_ok=True)
        rootfs = host_dir / "rootfs"
        lowerdir = ":".join(str(d) for d in lowers)
        overlay = f"lowerdir={lowerdir},upperdir={host_dir / 'upper'},workdir={host_dir / 'work'}"
        nspawn = [
            "systemd-nspawn",
            "--quiet",
            "-D",
            str(rootfs),
            "-M",
            name,
            "--register=no",
            "--keep-unit",
            f"--network-namespace-path=/run/netns/{netns}",
            "--resolv-conf=off",
            "--timezone=off",
            "--link-journal=no",
            "--console=read-only",
            "-b",
        ]
        # In a private mount namespace: nspawn needs its own tmpfs on /run/systemd/nspawn here,
        # and the host's overlay root disappears with the namespace when the host stops.
        script = (
            "mount -t tmpfs tmpfs /run/systemd/nspawn && "
            'mount -t overlay overlay -o "$0" "$1" && shift && exec "$@"'
        )
        log = open(host_dir / "console.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                script,
                overlay,
                str(rootfs),
                *nspawn,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return proc.pid

    def _wait_ready(self, data: dict[str, Any]) -> None:
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        pid = data["pid"]
        console = self._host_dir(data["name"]) / "console.log"
        while time.monotonic() < deadline:
            _reap(pid)
            if not _pid_alive(pid):
                tail = console.read_text(errors="replace")[-1500:] if console.exists() else ""
                raise TestbedError(f"host {data['name']} exited while booting:\n{tail}")
            with contextlib.suppress(OSError):
                if _tcp_banner(data["address"], SSH_PORT).startswith(b"SSH-"):
                    return
            time.sleep(0.1)
        raise TestbedError(
            f"host {data['name']} did not answer SSH on {data['address']}:22 within "
            f"{BOOT_TIMEOUT_S:.0f} s; see {console}"
        )

    # ---------------------------------------------------------------- layers
    def layer_dir(self, layer: str) -> Path:
        if not NAME_RE.match(layer):
            raise TestbedError(f"layer name {layer!r} is invalid: use the host-name rules")
        return self.layers_dir / layer

    def layers(self) -> list[str]:
        if not self.layers_dir.is_dir():
            return []
        return sorted(p.name for p in self.layers_dir.iterdir() if NAME_RE.match(p.name))

    def capture(self, name: str, layer: str) -> Path:
        """Power host *name* off and keep what it changed as *layer*, then remove the host.

        Hosts booted with ``up(..., layer=layer)`` start from those changes (an overlay lower
        layer between their own upper layer and the rootfs, so they share it read-only). The
        host's identity (hostname, machine id, SSH host key, test key) is left out: each new
        host writes its own. A host that itself runs on a layer cannot be captured (the layer
        would be missing the changes below it).
        """
        target = self.layer_dir(layer)
        self.require()
        with self._lock():
            data = self._read_state(name)
            if data is None or not self._running(data):
                raise TestbedError(f"host {name} is not running; nothing to capture")
            if data.get("layer"):
                raise TestbedError(f"host {name} runs on layer {data['layer']}; boot it plain")
            _stop_pid(int(data["pid"]), str(data["rootfs"]))
            upper = Path(data["upper"])
            for rel in IDENTITY_FILES:
                with contextlib.suppress(FileNotFoundError):
                    (upper / rel).unlink()
            for key in (upper / "etc" / "ssh").glob("ssh_host_*"):
                key.unlink()
            journal = upper / "var" / "log" / "journal"
            shutil.rmtree(journal, ignore_errors=True)
            self.layers_dir.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(target, ignore_errors=True)
            upper.rename(target)  # same file system: the host's changes move, nothing copies
            self._down_locked(name)
            if not self.host_names():
                self._teardown_shared()
        return target

    def drop_layer(self, layer: str) -> None:
        """Remove a layer (no host may be running on it)."""
        target = self.layer_dir(layer)
        with self._lock():
            users = [
                n for n in self.host_names() if (self._read_state(n) or {}).get("layer") == layer
            ]
            if users:
                raise TestbedError(f"layer {layer} is in use by {', '.join(users)}")
            shutil.rmtree(target, ignore_errors=True)

    # ---------------------------------------------------------------- down
    def down(self, names: Sequence[str]) -> None:
        """Remove the named hosts; the bridge and proxy go too once no host is left."""
        self.require()
        with self._lock():
            for name in names:
                self._down_locked(name)
            if not self.host_names():
                self._teardown_shared()

    def down_all(self) -> None:
        """Remove every host, namespace, veth, bridge and proxy this tool made."""
        self.require()
        with self._lock():
            for name in self.host_names():
                self._down_locked(name)
            # Leftovers of crashed runs, found by this tool's own name prefixes.
            for netns in _run(["ip", "netns", "list"]).stdout.split():
                if netns.startswith(self.netns_prefix):
                    self._kill_netns_processes(netns)
                    _run(["ip", "netns", "del", netns], check=False)
            for link in self._own_veths():
                _run(["ip", "link", "del", link], check=False)
            self._teardown_shared()

    def _own_veths(self) -> list[str]:
        out = _run(["ip", "-o", "link", "show"]).stdout
        names = []
        for line in out.splitlines():
            ifname = line.split(":", 2)[1].strip().split("@", 1)[0]
            if re.fullmatch(re.escape(self.veth_prefix) + r"\d{1,3}", ifname):
                names.append(ifname)
        return names

    @staticmethod
    def _kill_netns_processes(netns: str) -> None:
        pids = _run(["ip", "netns", "pids", netns], check=False).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)

    def _down_locked(self, name: str) -> None:
        host_dir = self._host_dir(name)
        data = self._read_state(name) or {}
        pid = data.get("pid")
        rootfs = Path(data.get("rootfs", host_dir / "rootfs"))
        if isinstance(pid, int):
            _stop_pid(pid, str(rootfs))
        netns = data.get("netns", self.netns_prefix + name)
        if netns in _run(["ip", "netns", "list"]).stdout.split():
            self._kill_netns_processes(netns)
            _run(["ip", "netns", "del", netns], check=False)
        if data.get("address") and self._bridge_exists():
            _run(["ip", "neigh", "flush", "to", data["address"], "dev", self.bridge], check=False)
        veth = data.get("veth")
        if veth and _run(["ip", "link", "show", "dev", veth], check=False).returncode == 0:
            _run(["ip", "link", "del", veth], check=False)
        for mount_point in reversed(_mounts_under(host_dir)) if host_dir.exists() else []:
            _run(["umount", "-l", mount_point], check=False)
        if host_dir.exists():
            shutil.rmtree(host_dir)

    # ---------------------------------------------------------------- status
    def status(self) -> dict[str, Any]:
        self.require()
        hosts = []
        for name in self.host_names():
            data = self._read_state(name)
            if data is None:
                hosts.append({"name": name, "state": "broken"})
                continue
            hosts.append(
                {
                    **self._host_from_state(data).as_dict(),
                    "state": self._state_word(data),
                    "pid": data.get("pid"),
                    "layer": data.get("layer"),
                }
            )
        tarball = self.rootfs_tarball()
        return {
            "state_dir": str(self.root),
            "rootfs": str(tarball) if tarball.exists() else None,
            "bridge": self.bridge if self._bridge_exists() else None,
            "proxy": f"http://{self.bridge_address}:{self.proxy_port}"
            if self._proxy_pid()
            else None,
            "layers": self.layers(),
            "hosts": hosts,
        }

    def _state_word(self, data: dict[str, Any]) -> str:
        if self._running(data):
            return "running"
        if data.get("pid") is None and _pid_alive(int(data.get("owner", 0) or 0)):
            return "starting"
        return "stopped"

    def describe(self, name: str) -> dict[str, Any] | None:
        """What the tool made for host *name* (netns, veth, rootfs, pid ...), or None."""
        data = self._read_state(name)
        return dict(data) if data is not None else None

    def get(self, name: str) -> Host:
        data = self._read_state(name)
        if data is None or not self._running(data):
            raise TestbedError(f"host {name} is not running; start it with `up {name}`")
        return self._host_from_state(data)

# Copyright: faceswap-oci developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for faceswap_oci.core.media_push: rsync on the controller, sha256 on both sides.

Everything the upload needs happens in this one task: the media of every side go in one rsync
run (a staging folder of symlinks maps side X to <dest>/X/), the controller's sha256 is taken
from the caller (the runner has it already) or computed while the host checksums what it
received, and the host's side is one run of faceswap_oci.core.sha256sums. A task per step
costs a module round trip each, seconds in all, which is most of the time of a small upload.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible_collections.faceswap_oci.core.plugins.module_utils.digests import sha256_and_size
from ansible_collections.faceswap_oci.core.plugins.module_utils.rsync import Remote, rsync_argv

RSYNC_OPTIONS = [
    "--recursive",
    "--copy-links",
    "--inplace",
    "--times",
    "--no-whole-file",
    "--stats",
    "--no-human-readable",
    "--chmod=D0750,F0640",
    "--out-format=fsoci-sent\t%b\t%n",
]
ARGS = {
    "sources": dict,
    "dest": str,
    "sidecars": bool,
    "expected_sha256": dict,
    "verify": bool,
    "become_user": str,
    "local": bool,
    "ssh_host": str,
    "ssh_port": int,
    "ssh_user": str,
    "ssh_key": str,
    "ssh_args": str,
    "rsync_args": list,
    "io_timeout": int,
}
SIDECAR_SUFFIX = "_alignments.json"


def sha256_of(path: str) -> str:
    found = sha256_and_size(path)
    if found is None:
        raise AnsibleActionFail(f"{path} vanished from the controller during the upload")
    return found[0]


def sidecar_of(path: str) -> str:
    stem, _ext = os.path.splitext(path)
    return stem + SIDECAR_SUFFIX


def parse_sent(stdout: str) -> dict[str, int]:
    """Bytes per transferred file name, from the --out-format lines (folders excluded)."""
    sent: dict[str, int] = {}
    for line in stdout.splitlines():
        parts = line.split("\t", 2)
        if len(parts) == 3 and parts[0] == "fsoci-sent" and not parts[2].endswith("/"):
            sent[parts[2]] = int(parts[1])
    return sent


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGS)

    def _args(self) -> dict[str, Any]:
        raw = dict(self._task.args)
        defaults: dict[str, Any] = {
            "sidecars": True,
            "expected_sha256": {},
            "verify": True,
            "become_user": "",
            "local": False,
            "ssh_host": "",
            "ssh_port": 22,
            "ssh_user": "",
            "ssh_key": "",
            "ssh_args": "",
            "rsync_args": [],
            "io_timeout": 300,
        }
        for name in ("sources", "dest"):
            if not raw.get(name):
                raise AnsibleActionFail(f"media_push: '{name}' is required")
        args = {**defaults, **{k: v for k, v in raw.items() if v is not None}}
        for name in ("sidecars", "verify", "local"):
            args[name] = boolean(args[name], strict=True)
        for name in ("ssh_port", "io_timeout"):
            args[name] = int(args[name])
        if not isinstance(args["sources"], dict) or not all(
            isinstance(v, str) and os.path.isabs(v) for v in args["sources"].values()
        ):
            raise AnsibleActionFail(
                "media_push: 'sources' maps each side to an absolute controller path, got "
                f"{args['sources']!r}"
            )
        if not str(args["dest"]).startswith("/"):
            raise AnsibleActionFail(f"media_push: 'dest' must be absolute, got {args['dest']!r}")
        return args

    def _plan(self, args: dict[str, Any]) -> dict[str, list[str]]:
        """Controller paths per side: the medium, and its alignments JSON when asked."""
        plan: dict[str, list[str]] = {}
        for side, path in sorted(args["sources"].items()):
            if not (os.path.isfile(path) or os.path.isdir(path)):
                raise AnsibleActionFail(
                    f"Side {side}: '{path}' does not exist on the controller (or is not a "
                    f"file or folder). Fix inputs.{side} in the job spec."
                )
            files = [path]
            if args["sidecars"] and os.path.isfile(sidecar_of(path)):
                files.append(sidecar_of(path))
            plan[side] = files
        return plan

    def _command(self, args: dict[str, Any], stage: str, check: bool) -> list[str]:
        """One rsync run for every side; in check mode a dry run that makes no folder."""
        dest = args["dest"].rstrip("/")
        user = args["become_user"]
        if args["local"]:
            if not check:
                os.makedirs(dest, mode=0o750, exist_ok=True)
            remote = Remote(become_user=user)
        else:
            remote = Remote(
                host=args["ssh_host"],
                port=args["ssh_port"],
                user=args["ssh_user"],
                key=args["ssh_key"],
                ssh_args=args["ssh_args"],
                become_user=user,
            )
        return rsync_argv(
            RSYNC_OPTIONS,
            [stage + "/"],
            dest + "/",
            remote=remote,
            make_dest=not check,
            timeout=args["io_timeout"],
            check=check,
            extra=[str(a) for a in args["rsync_args"]],
        )

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        del tmp
        args = self._args()
        plan = self._plan(args)
        dest = args["dest"].rstrip("/")
        stage = tempfile.mkdtemp(prefix="fsoci-push-")
        try:
            for side, files in plan.items():
                os.mkdir(os.path.join(stage, side))
                for path in files:
                    os.symlink(path, os.path.join(stage, side, os.path.basename(path)))
            check = bool(self._task.check_mode)
            command = self._command(args, stage, check)
            started = time.monotonic()
            proc = subprocess.run(
                command, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False
            )
            seconds = round(time.monotonic() - started, 3)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        if proc.returncode != 0:
            raise AnsibleActionFail(
                f"rsync to {dest} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}. "
                "Run the upload phase again: it resumes from what arrived."
            )
        sent = parse_sent(proc.stdout)
        # name on the host (side/basename) -> controller path
        names = {f"{side}/{os.path.basename(p)}": p for side, files in plan.items() for p in files}
        moved = sorted(n for n in names if n in sent or any(s.startswith(n + "/") for s in sent))
        verified = args["verify"] and bool(moved) and not check
        if verified:
            self._verify(args, task_vars or {}, dest, {n: names[n] for n in moved})
        sides = {
            side: {
                "files": [os.path.basename(p) for p in files],
                "bytes_sent": sum(b for n, b in sent.items() if n.startswith(side + "/")),
                "files_transferred": sum(1 for n in sent if n.startswith(side + "/")),
            }
            for side, files in plan.items()
        }
        result.update(
            changed=bool(moved),
            check_mode=check,
            transferred=moved,
            upload={
                "sides": sides,
                "bytes_sent": sum(sent.values()),
                "files_transferred": len(sent),
                "verified": verified,
                "rsync_seconds": seconds,
            },
        )
        return result

    def _verify(
        self, args: dict[str, Any], task_vars: dict[str, Any], dest: str, moved: dict[str, str]
    ) -> None:
        expected = {str(k): str(v) for k, v in (args["expected_sha256"] or {}).items()}
        todo = [p for p in moved.values() if p not in expected]
        remote_paths = [f"{dest}/{name}" for name in moved]
        # The controller hashes (when the caller gave no sums) while the host does.
        with ThreadPoolExecutor(max_workers=max(1, len(todo))) as pool:
            pending = {p: pool.submit(sha256_of, p) for p in todo}
            remote = self._execute_module(
                module_name="faceswap_oci.core.sha256sums",
                module_args={"paths": remote_paths},
                task_vars=task_vars,
            )
            local = {p: future.result() for p, future in pending.items()}
        if remote.get("failed"):
            raise AnsibleActionFail(f"checksumming on the host failed: {remote.get('msg')}")
        local.update({p: expected[p] for p in moved.values() if p in expected})
        bad = []
        for name, path in moved.items():
            theirs = (remote.get("files") or {}).get(f"{dest}/{name}", {}).get("sha256")
            if theirs != local[path]:
                bad.append(f"{name}: controller {local[path]}, host {theirs}")
        if bad:
            raise AnsibleActionFail(
                "sha256 mismatch after rsync: "
                + "; ".join(bad)
                + ". Run the upload phase again; a persistent mismatch points at the disk or "
                "the link."
            )

#!/usr/bin/env python3
"""Snapshots of a training to the job bucket, through a pre-authenticated request (stdlib only).

Runs on the host with nothing but the PAR's URL (read from a 0600 file; it is a credential and
is never printed): no OCI SDK, no user key. Used by the training supervisor (fsoci_train.py)
after each model save, and on its own (``push``/``restore``/``faces`` subcommands), so a
detached job can push snapshots without the controller.

Layout under the job's prefix (``jobs/<job>/``):

- ``snapshots/<id>/<file>``: one snapshot's files (model folder, state, preview);
- ``snapshots/<id>/manifest.json``: name, size, sha256 and MD5 of every file, written after each
  file was uploaded and its MD5 checked against what the service stored (HEAD);
- ``latest.json``: the pointer: the latest complete snapshot, its iteration and the manifest's
  sha256. Written last, so a half-uploaded snapshot never becomes "latest", and never moved to
  an older iteration;
- ``faces/...`` and ``faces/complete.json``: the extracted faces, Faceswap's alignments file
  of each side and the extract phase's markers (``extract_outputs``), once. A new host restores
  them before its extract phase (``faces-restore``), whose markers then match and skip it.

Files above ``multipart_threshold`` go up as multipart uploads through the PAR
(docs.oracle.com/iaas/Content/Object/Tasks/usingpreauthenticatedrequests.htm, uploading large
objects: ``PUT`` with ``opc-multipart: true`` answers the upload's access URI; parts are PUT to
``<accessUri><n>``, ``POST`` commits, ``DELETE`` aborts). The parts already sent are recorded in
a local journal, so an upload cut short resumes with the next part.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import os
import random
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

PART_SIZE = 128 * 1024 * 1024  # the OCI SDK UploadManager's default part size
MULTIPART_THRESHOLD = 128 * 1024 * 1024
POINTER = "latest.json"
FACES_DONE = "faces/complete.json"
# What is retried: the OCI SDK's default strategy retries 409 IncorrectState, 429 and every 5xx
# except 501, plus timeouts and connection errors, up to 8 attempts with exponential backoff and
# full jitter, capped at 30 s between attempts (oci/retry/retry.py, DEFAULT_RETRY_STRATEGY).
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_ATTEMPTS = 8


class SnapshotError(Exception):
    """An upload or download that failed for good (after the retries)."""


def _md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


def file_digests(path: Path, part_size: int = PART_SIZE) -> dict[str, Any]:
    """Size, sha256, MD5 (base64) and the MD5 of each ``part_size`` part of a file."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    parts: list[str] = []
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(part_size):
            sha.update(chunk)
            md5.update(chunk)
            parts.append(_md5_b64(chunk))
            size += len(chunk)
    return {
        "size": size,
        "sha256": sha.hexdigest(),
        "md5": base64.b64encode(md5.digest()).decode(),
        "parts": parts,
    }


def multipart_md5(part_md5s: list[str]) -> str:
    """The service's ``opc-multipart-md5`` of a multipart object: the MD5 of the parts' MD5s,
    then ``-<number of parts>``."""
    joined = b"".join(base64.b64decode(m) for m in part_md5s)
    return f"{_md5_b64(joined)}-{len(part_md5s)}"


class Response:
    """One HTTP answer: status, body, lower-cased headers."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.status = status
        self.body = body
        self.headers = headers


class ParStore:
    """Objects under one prefix, through a PAR URL (``.../p/<token>/n/<ns>/b/<bucket>/o/``)."""

    def __init__(
        self,
        par_url: str,
        prefix: str,
        *,
        timeout: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        if "/p/" not in par_url or not par_url.rstrip("/").endswith("/o"):
            # Never echo the URL: it is a credential.
            raise SnapshotError(
                "the PAR file does not hold a bucket PAR URL (…/p/<token>/n/<ns>/b/<bucket>/o/); "
                "run the job's provision again to make a new one"
            )
        self.base = par_url.rstrip("/") + "/"
        parts = urllib.parse.urlsplit(self.base)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.prefix = prefix
        self.timeout = timeout
        self.sleep = sleep
        self.max_attempts = max_attempts
        self.requests = 0

    def url(self, name: str) -> str:
        return self.base + urllib.parse.quote(self.prefix + name, safe="/")

    def _once(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> Response:
        req = urllib.request.Request(url, data=body, method=method, headers=headers)
        self.requests += 1
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return Response(
                    resp.status, resp.read(), {k.lower(): v for k, v in resp.headers.items()}
                )
        except urllib.error.HTTPError as err:
            return Response(err.code, err.read(), {k.lower(): v for k, v in err.headers.items()})

    def request(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        ok: Iterable[int] = (200, 204),
    ) -> Response:
        """One call, retried on throttling, 5xx and lost connections with full-jitter backoff."""
        wanted = set(ok)
        last = ""
        for attempt in range(self.max_attempts):
            try:
                resp = self._once(method, url, body, dict(headers or {}))
            except (OSError, http.client.HTTPException) as exc:
                last = f"{type(exc).__name__}"
            else:
                if resp.status in wanted:
                    return resp
                if resp.status not in RETRY_STATUSES:
                    raise SnapshotError(_describe(method, resp))
                last = _describe(method, resp)
            self.sleep(random.uniform(0, min(30.0, 2.0**attempt)))
        raise SnapshotError(f"{last} (after {self.max_attempts} attempts)")

    # --- objects ----------------------------------------------------------------------------------
    def put_bytes(self, name: str, data: bytes) -> Response:
        return self.request("PUT", self.url(name), data, {"Content-MD5": _md5_b64(data)})

    def _unless_missing(self, method: str, name: str) -> Response | None:
        """``method`` on the object ``name``; None where the PAR answers 404 (no such object)."""
        try:
            return self.request(method, self.url(name))
        except SnapshotError as exc:
            if " 404" in str(exc):
                return None
            raise

    def head(self, name: str) -> dict[str, str] | None:
        resp = self._unless_missing("HEAD", name)
        return None if resp is None else resp.headers

    def get_bytes(self, name: str) -> bytes | None:
        resp = self._unless_missing("GET", name)
        return None if resp is None else resp.body

    def get_json(self, name: str) -> dict[str, Any] | None:
        data = self.get_bytes(name)
        if data is None:
            return None
        try:
            value = json.loads(data)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def put_file(
        self,
        name: str,
        path: Path,
        digests: dict[str, Any],
        journal: Path,
        part_size: int = PART_SIZE,
        threshold: int = MULTIPART_THRESHOLD,
    ) -> str:
        """Upload ``path`` as ``name``; the MD5 the service must report back for it."""
        if digests["size"] <= threshold:
            self.request("PUT", self.url(name), path.read_bytes(), {"Content-MD5": digests["md5"]})
            return str(digests["md5"])
        return self._multipart(name, path, digests, journal, part_size)

    def _multipart(
        self, name: str, path: Path, digests: dict[str, Any], journal: Path, part_size: int
    ) -> str:
        key = {"name": self.prefix + name, "sha256": digests["sha256"], "part_size": part_size}
        state = _read_json(journal) or {}
        if {k: state.get(k) for k in key} != key or not state.get("upload_uri"):
            resp = self.request("PUT", self.url(name), b"", {"opc-multipart": "true"})
            state = {**key, "upload_uri": json.loads(resp.body)["accessUri"], "done": {}}
            _write_json(journal, state)
        upload = self.origin + state["upload_uri"]
        with open(path, "rb") as fh:
            for n, md5 in enumerate(digests["parts"], start=1):
                if state["done"].get(str(n)) == md5:
                    continue  # sent before an interruption: resume after it
                fh.seek((n - 1) * part_size)
                chunk = fh.read(part_size)
                try:
                    self.request("PUT", upload + str(n), chunk, {"Content-MD5": md5})
                except SnapshotError as exc:
                    if " 404" in str(exc):  # the upload is gone (aborted, expired): start over
                        journal.unlink(missing_ok=True)
                    raise
                state["done"][str(n)] = md5
                _write_json(journal, state)
        self.request("POST", upload, b"")
        journal.unlink(missing_ok=True)
        return multipart_md5(digests["parts"])


def _describe(method: str, resp: Response) -> str:
    try:
        body = json.loads(resp.body)
        what = f"{body.get('code')}: {body.get('message')}"
    except ValueError:
        what = resp.body[:200].decode(errors="replace")
    # The URL is left out on purpose: it holds the PAR's token.
    return f"Object Storage {method} answered {resp.status} {what}"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _stored_md5(headers: dict[str, str]) -> str | None:
    return headers.get("content-md5") or headers.get("opc-multipart-md5")


def _files(root: Path) -> list[tuple[Path, str]]:
    return sorted(
        (p, p.relative_to(root).as_posix())
        for p in root.rglob("*")
        if p.is_file() and not p.name.endswith(".tmp")
    )


def put_verified(
    store: ParStore,
    name: str,
    path: Path,
    journal: Path,
    part_size: int = PART_SIZE,
    threshold: int = MULTIPART_THRESHOLD,
) -> dict[str, Any]:
    """Upload *path* as *name* (multipart with resume above *threshold*), then check the MD5
    Object Storage stored; returns the file's size, sha256 and MD5. Raises SnapshotError when
    the stored object does not match."""
    digests = file_digests(path, part_size)
    expected = store.put_file(name, path, digests, journal, part_size, threshold)
    head = store.head(name)
    if head is None or _stored_md5(head) != expected:
        raise SnapshotError(f"{name}: the stored object's MD5 does not match the file")
    return {"size": digests["size"], "sha256": digests["sha256"], "md5": expected}


def push_snapshot(
    store: ParStore,
    staged: Path,
    iteration: int,
    journal_dir: Path,
    *,
    part_size: int = PART_SIZE,
    threshold: int = MULTIPART_THRESHOLD,
) -> dict[str, Any]:
    """Upload the staged snapshot folder, verify every file, then move the pointer to it.

    Returns the pointer. Raises SnapshotError when any file fails: the pointer then still
    names the previous complete snapshot.
    """
    snap = f"{iteration:09d}"
    current = store.get_json(POINTER)
    if current is not None and str(current.get("snapshot", "")).split(".")[0] == snap:
        # the same iteration saved again (the exit's save after the last interval's): a new
        # folder, so the one the pointer names is never rewritten while it is the latest
        done = str(current["snapshot"]).partition(".")[2]
        snap = f"{snap}.{int(done or 0) + 1}"
    files = []
    for path, rel in _files(staged):
        name = f"snapshots/{snap}/{rel}"
        journal = journal_dir / f"upload-{hashlib.sha256(name.encode()).hexdigest()[:16]}.json"
        stored = put_verified(store, name, path, journal, part_size, threshold)
        files.append({"name": rel, **stored})
    manifest = {"snapshot": snap, "iteration": iteration, "files": files, "time": time.time()}
    body = json.dumps(manifest, sort_keys=True).encode()
    store.put_bytes(f"snapshots/{snap}/manifest.json", body)
    pointer = {
        "snapshot": snap,
        "iteration": iteration,
        "manifest_sha256": hashlib.sha256(body).hexdigest(),
        "files": {f["name"]: f["sha256"] for f in files},
    }
    current = store.get_json(POINTER)
    if current is not None and int(current.get("iteration", -1)) > iteration:
        return current  # never move the pointer back
    store.put_bytes(POINTER, json.dumps(pointer, sort_keys=True).encode())
    return pointer


def restore_snapshot(store: ParStore, dest: Path) -> dict[str, Any] | None:
    """Download the latest complete snapshot into ``dest`` (replaced whole, only once every
    file's sha256 matched the manifest); the pointer, or None when there is none."""
    pointer = store.get_json(POINTER)
    if pointer is None:
        return None
    snap = pointer["snapshot"]
    body = store.get_bytes(f"snapshots/{snap}/manifest.json")
    if body is None or hashlib.sha256(body).hexdigest() != pointer["manifest_sha256"]:
        raise SnapshotError(f"snapshot {snap}: the manifest is missing or does not match")
    manifest = json.loads(body)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".restore-", dir=dest.parent))
    try:
        for f in manifest["files"]:
            data = store.get_bytes(f"snapshots/{snap}/{f['name']}")
            if data is None or hashlib.sha256(data).hexdigest() != f["sha256"]:
                raise SnapshotError(f"snapshot {snap}: {f['name']} is missing or corrupt")
            out = tmp / f["name"]
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return pointer


def push_faces(store: ParStore, folders: dict[str, Path], journal_dir: Path) -> bool:
    """Upload the faces and alignments once; False when the bucket holds these already. Faces
    extracted again (changed media) replace the bucket's, so a later host restores the faces
    the training used."""
    found = []
    for label, root in folders.items():
        for path, rel in _files(root) if root.is_dir() else [(root, root.name)]:
            found.append((f"{label}/{rel}", path, file_digests(path)))
    listing = {key: digests["sha256"] for key, _path, digests in found}
    done = store.get_json(FACES_DONE)
    if done is not None and done.get("files") == listing:
        return False
    for key, path, digests in found:
        name = f"faces/{key}"
        journal = journal_dir / f"upload-{hashlib.sha256(name.encode()).hexdigest()[:16]}.json"
        store.put_file(name, path, digests, journal)
    store.put_bytes(FACES_DONE, json.dumps({"files": listing}, sort_keys=True).encode())
    return True


def restore_faces(store: ParStore, folders: dict[str, Path]) -> int | None:
    """Download the faces into their folders; the number of files, None when never uploaded."""
    done = store.get_json(FACES_DONE)
    if done is None:
        return None
    count = 0
    for key, sha in sorted(done["files"].items()):
        label, rel = key.split("/", 1)
        if label not in folders:
            continue  # e.g. the markers, when only the face folders are asked for
        data = store.get_bytes(f"faces/{key}")
        if data is None or hashlib.sha256(data).hexdigest() != sha:
            raise SnapshotError(f"faces/{key} is missing or corrupt")
        root = folders[label]
        out = root / rel if root.suffix == "" else root
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
        count += 1
    return count


def extract_outputs(job_dir: Path, media: dict[str, str]) -> dict[str, Path]:
    """What the extract phase made for each side (label -> path): the face folder, Faceswap's
    alignments file beside the media (``<stem>_alignments.fsa``) and the phase's marker
    (``logs/extract_<side>.done``, keyed by what the faces were made from; docs/contracts.md,
    "Host-side markers"). The same labels on upload and restore."""
    out: dict[str, Path] = {}
    for side, path in sorted(media.items()):
        src = Path(path)
        out[side] = job_dir / f"faces_{side}"
        out[f"alignments_{side}"] = src.with_name(f"{src.stem}_alignments.fsa")
        out[f"marker_{side}"] = job_dir / "logs" / f"extract_{side}.done"
    return out


def extract_outputs_from_markers(job_dir: Path, sides: Iterable[str]) -> dict[str, Path]:
    """``extract_outputs`` of the sides whose marker names its media (the training supervisor
    does not know the media paths; the marker does); only the face folder otherwise."""
    media: dict[str, str] = {}
    out: dict[str, Path] = {}
    for side in sides:
        marker = _read_json(job_dir / "logs" / f"extract_{side}.done") or {}
        path = ((marker.get("made_from") or {}).get("media") or {}).get("path")
        if isinstance(path, str) and path:
            media[side] = path
        else:
            out[side] = job_dir / f"faces_{side}"
    out.update(extract_outputs(job_dir, media))
    return out


def restore_extract(store: ParStore, job_dir: Path, media: dict[str, str]) -> dict[str, Any]:
    """On a fresh host (no face and no marker of any side), bring the extract phase's outputs
    back from the bucket, so its markers match and it skips. A host that holds any of them keeps
    them: its markers decide."""
    outputs = extract_outputs(job_dir, media)
    for label, path in outputs.items():
        held = (path.is_dir() and any(path.iterdir())) if label in media else path.exists()
        if held:
            return {"restored": False, "why": f"{path} exists"}
    files = restore_faces(store, outputs)
    if files is None:
        return {"restored": False, "why": "no faces in the job bucket"}
    return {"restored": files > 0, "files": files}


def is_training_log(rel: str) -> bool:
    """Whether *rel* (a path in the model folder) is in Faceswap's TensorBoard logs,
    ``<model>/<name>_logs/session_<n>/`` (lib/training/train.py ``_set_tensorboard``): its
    writer appends to them every few iterations between saves (``update_freq="batch"``, a
    flush at each save), so they are not part of what a save writes."""
    return rel.split("/", 1)[0].endswith("_logs")


def save_signature(model_dir: Path) -> list[tuple[str, int, int]]:
    """(name, size, mtime in ns) of every file a save writes in the model folder (the
    TensorBoard logs left out: they grow between saves)."""
    out = []
    for path, rel in _files(model_dir):
        if is_training_log(rel):
            continue
        with contextlib.suppress(FileNotFoundError):
            st = path.stat()
            out.append((rel, st.st_size, st.st_mtime_ns))
    return out


def stage(
    model_dir: Path, extra: Iterable[Path], staging: Path
) -> tuple[Path, list[tuple[str, int, int]]]:
    """A consistent copy of the model folder (and ``extra`` files) to upload from, so Faceswap
    can go on writing while the upload runs.

    Faceswap rewrites its model file in place, then its state file (plugins/train/model/_base/
    io.py, ``_save_model``), and saves twice at the end of a training (the last interval's
    save, then the exit's): a copy taken while a save runs would hold a torn model that every
    checksum then vouches for. So the folder's files are compared before and after the copy,
    and a copy of a folder that changed meanwhile is refused (SnapshotError; the supervisor
    copies it again at its next check). Returns the copy and the folder's ``save_signature``
    as copied."""
    if staging.exists():
        shutil.rmtree(staging)
    before = save_signature(model_dir)
    shutil.copytree(model_dir, staging / "model", ignore=shutil.ignore_patterns("*.tmp"))
    if save_signature(model_dir) != before:
        shutil.rmtree(staging, ignore_errors=True)
        raise SnapshotError(
            "the model changed while it was copied (Faceswap was saving); copied again later"
        )
    for path in extra:
        with contextlib.suppress(FileNotFoundError):
            shutil.copy2(path, staging / path.name)
    return staging, before


def read_par_url(path: str) -> str:
    with open(path, encoding="utf-8") as fh:
        return fh.read().strip()


def main(argv: list[str]) -> int:
    usage = (
        "push PAR_FILE PREFIX FOLDER ITERATION | restore PAR_FILE PREFIX DEST"
        " | faces-restore PAR_FILE PREFIX JOB_DIR SIDE=MEDIA..."
    )
    if len(argv) < 5 or argv[1] not in ("push", "restore", "faces-restore"):
        print(f"usage: {argv[0]} {usage}", file=sys.stderr)
        return 2
    store = ParStore(read_par_url(argv[2]), argv[3])
    try:
        if argv[1] == "faces-restore":
            media = dict(arg.split("=", 1) for arg in argv[5:] if "=" in arg)
            report = restore_extract(store, Path(argv[4]), media)
            print(json.dumps({"fsoci_faces_restore": report}, sort_keys=True))
            return 0
        if argv[1] == "push" and len(argv) == 6:
            folder = Path(argv[4])
            out = push_snapshot(store, folder, int(argv[5]), folder.parent / ".fsoci-journal")
        elif argv[1] == "restore" and len(argv) == 5:
            out = restore_snapshot(store, Path(argv[4])) or {}
        else:
            print(f"usage: {argv[0]} {usage}", file=sys.stderr)
            return 2
    except SnapshotError as exc:
        print(json.dumps({"fsoci_snapshot": {"error": str(exc)}}))
        return 1
    print(
        json.dumps(
            {"fsoci_snapshot": {"iteration": out.get("iteration"), "snapshot": out.get("snapshot")}}
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

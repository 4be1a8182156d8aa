# Copyright: faceswap-oci developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sha256 of a file or a folder, the same on the controller and on the host.

A folder's digest covers its files in sorted order (part by part), each as its relative path,
a NUL byte and its content: faceswap_oci.state computes the same for a folder input.
"""

from __future__ import annotations

import hashlib
import os

BLOCK = 1 << 20


def _files_of(path: str) -> list[tuple[str, str]]:
    """(relative name, absolute path) of a folder's files, sorted part by part."""
    found = []
    for top, _dirs, names in os.walk(path, followlinks=True):
        for name in names:
            full = os.path.join(top, name)
            if os.path.isfile(full):
                found.append((os.path.relpath(full, path), full))
    return sorted(found, key=lambda item: item[0].split(os.sep))


def sha256_and_size(path: str) -> tuple[str, int] | None:
    """(hex sha256, bytes read) of a file or folder; None when the path does not exist."""
    if not os.path.exists(path):
        return None
    sha = hashlib.sha256()
    size = 0
    is_dir = os.path.isdir(path)
    for rel, full in _files_of(path) if is_dir else [("", path)]:
        if is_dir:
            sha.update(rel.encode() + b"\0")
        with open(full, "rb") as handle:
            while True:
                chunk = handle.read(BLOCK)
                if not chunk:
                    break
                sha.update(chunk)
                size += len(chunk)
    return sha.hexdigest(), size

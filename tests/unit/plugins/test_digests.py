"""One digest on both sides: the controller's (faceswap_oci.state) is the host's
(module_utils/digests.py), also for a folder holding a symlinked folder."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ansible_collections.faceswap_oci.core.plugins.module_utils import digests

from faceswap_oci.state import StateDir


def state(tmp_path: Path) -> StateDir:
    (tmp_path / "state").mkdir()
    return StateDir(tmp_path / "state")


def folder(tmp_path: Path) -> Path:
    top = tmp_path / "frames"
    (top / "sub").mkdir(parents=True)
    (top / "a.png").write_bytes(b"A" * 10)
    (top / "sub" / "b.png").write_bytes(b"B")
    linked = tmp_path / "elsewhere"
    linked.mkdir()
    (linked / "c.png").write_bytes(b"C")
    (top / "linked").symlink_to(linked, target_is_directory=True)
    return top


def test_a_folder_digest_covers_names_and_contents_in_order(tmp_path: Path) -> None:
    top = folder(tmp_path)
    expected = hashlib.sha256(
        b"a.png\0" + b"A" * 10 + b"linked/c.png\0C" + b"sub/b.png\0B"
    ).hexdigest()
    assert digests.sha256_and_size(str(top)) == (expected, 12)
    assert state(tmp_path).sha256(top) == expected


def test_a_file_digest_is_its_sha256(tmp_path: Path) -> None:
    clip = tmp_path / "a.mp4"
    clip.write_bytes(b"video")
    expected = hashlib.sha256(b"video").hexdigest()
    assert digests.sha256_and_size(str(clip)) == (expected, 5)
    assert state(tmp_path).sha256(clip) == expected

"""Tiny real videos for tests whose job files go through the spec's preflight (it probes each
input with ffprobe, so a few bytes named ``a.mp4`` no longer pass)."""

from __future__ import annotations

import functools
import subprocess
import tempfile
from pathlib import Path

COLOURS = ("red", "blue", "green", "white")


@functools.cache
def _clip(colour: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "clip.mp4"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"color=c={colour}:s=32x32:r=2:d=1",
             "-pix_fmt", "yuv420p", str(out)],
            check=True, timeout=60,
        )  # fmt: skip
        return out.read_bytes()


def write_video(path: Path, colour: str = "red") -> Path:
    """Write a 1 s, 32x32 H.264 clip of one colour (different colours: different files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_clip(colour))
    return path


def write_pair(folder: Path, a: str = "a.mp4", b: str = "b.mp4") -> tuple[Path, Path]:
    return write_video(folder / a, "red"), write_video(folder / b, "blue")

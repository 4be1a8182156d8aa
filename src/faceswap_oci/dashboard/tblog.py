"""Loss history from Faceswap's TensorBoard event files (pulled back into the job's state).

Faceswap writes one event file per training session (``<model>/<trainer>_logs/session_<N>/``),
each record a ``tensorboard.Event`` holding one scalar: ``batch_face_a`` and ``batch_face_b`` are
the per-side losses at ``step`` = the model's cumulative iteration (Faceswap
``lib/training/train.py`` ``_log_tensorboard``). The records are decoded with tensorboard's own
protobuf classes (``tensorboard.compat.proto.event_pb2``).

The framing is TFRecord (uint64 length, uint32 masked CRC of the length, the data, uint32
masked CRC of the data; tensorflow ``core/lib/io/record_writer.cc``). tensorboard's own
``RawEventFileLoader`` reads it in pure Python with a per-byte CRC (27 s for 100,000 Faceswap
iterations on the development machine), so the records are cut here and the CRCs not checked;
a record cut short at the end of a file (a copy still arriving) is read on the next call.
Each file is read once: the reader keeps its offset and reads only what was appended since.
"""

from __future__ import annotations

import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path

from tensorboard.compat.proto import event_pb2

TAGS = {"batch_face_a": 0, "batch_face_b": 1}
_HEADER = struct.Struct("<QI")


@dataclass
class _FileState:
    offset: int = 0
    size: int = 0
    steps: dict[int, list[float | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class Losses:
    """Loss A and B by iteration, sorted by iteration (a later session wins a repeated step)."""

    steps: tuple[int, ...]
    loss_a: tuple[float | None, ...]
    loss_b: tuple[float | None, ...]

    def as_json(self) -> dict[str, list[int] | list[float | None]]:
        return {"steps": list(self.steps), "loss_a": list(self.loss_a), "loss_b": list(self.loss_b)}


def _session_key(path: Path) -> tuple[int, str]:
    name = path.parent.name
    number = name.removeprefix("session_")
    return (int(number) if number.isdigit() else 0, path.name)


class LossReader:
    """Reads the event files under one folder (``<state>/tensorboard``), incrementally."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._files: dict[Path, _FileState] = {}
        self._lock = threading.Lock()

    def files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.glob("*/events.out.tfevents.*"), key=_session_key)

    def _read(self, path: Path, state: _FileState) -> None:
        try:
            size = path.stat().st_size
        except OSError:
            return
        if size < state.size:  # replaced by a shorter file: read it again from the start
            state.offset, state.steps = 0, {}
        state.size = size
        if size <= state.offset:
            return
        with path.open("rb") as handle:
            handle.seek(state.offset)
            data = handle.read()
        offset, end = 0, len(data)
        unpack = _HEADER.unpack_from
        parse = event_pb2.Event.FromString
        steps = state.steps
        while offset + 12 <= end:
            length, _crc = unpack(data, offset)
            stop = offset + 12 + length + 4
            if stop > end:
                break
            event = parse(data[offset + 12 : offset + 12 + length])
            for value in event.summary.value:
                index = TAGS.get(value.tag)
                if index is not None:
                    row = steps.setdefault(event.step, [None, None])
                    row[index] = value.simple_value
            offset = stop
        state.offset += offset

    def losses(self) -> Losses:
        with self._lock:
            merged: dict[int, list[float | None]] = {}
            for path in self.files():
                state = self._files.setdefault(path, _FileState())
                self._read(path, state)
                merged.update(state.steps)
        steps = sorted(merged)
        return Losses(
            steps=tuple(steps),
            loss_a=tuple(merged[s][0] for s in steps),
            loss_b=tuple(merged[s][1] for s in steps),
        )

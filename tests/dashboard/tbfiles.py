"""TensorBoard event files shaped like Faceswap's, for tests and the dashboard benchmark.

Faceswap's trainer writes, per iteration, through torch's ``SummaryWriter.add_scalar`` (which
stores ``Summary.Value(tag, simple_value)``) into ``<model>/<trainer>_logs/session_<N>/train/``:
``batch_total``, ``batch_face_A``/``_B`` and one ``batch_weighted_<side>/<loss>`` and
``batch_unweighted_<side>/<loss>`` per loss function (Faceswap ``lib/training/train.py``
``_log_tensorboard``, ``lib/training/tensorboard.py`` ``on_train_batch_end``; tags and layout
checked against the event file of a real demo run). Written here with tensorboard's own
``EventFileWriter``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

LOSSES = ("ssim", "mse")


def loss_at(step: int, side: str) -> float:
    base = 0.2 if side == "A" else 0.25
    return base * math.exp(-step / 20000) + 0.01 * math.sin(step)


def write_session(folder: Path, first: int, steps: int, start: float | None = None) -> Path:
    """One session's event file with ``steps`` iterations from ``first``; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = EventFileWriter(str(folder), max_queue_size=1000, flush_secs=3600)
    wall = start if start is not None else time.time()
    for step in range(first, first + steps):
        values = [summary_pb2.Summary.Value(tag="batch_total", simple_value=0.5)]
        for side in ("A", "B"):
            loss = loss_at(step, side)
            values.append(summary_pb2.Summary.Value(tag=f"batch_face_{side}", simple_value=loss))
            for kind in ("weighted", "unweighted"):
                for name in LOSSES:
                    values.append(
                        summary_pb2.Summary.Value(
                            tag=f"batch_{kind}_{side}/{name}", simple_value=loss / 2
                        )
                    )
        for value in values:
            event = event_pb2.Event(
                wall_time=wall + step * 0.1, step=step, summary=summary_pb2.Summary(value=[value])
            )
            writer.add_event(event)
    writer.close()
    found = sorted(folder.glob("events.out.tfevents.*"))
    return found[-1]

"""Notifications through Apprise (one library for ntfy, Slack, Discord, e-mail, Telegram,
json:// webhooks, ...): the spec's ``notify`` URLs hear about the job's milestones.

They fire on: the job finished (output file, cost), a phase failed (reason), preempted and
recovered (``Report`` kinds ``preempted`` / ``recovered``), the teardown failed (resources may
still be billing), the list-price cost so far crossed ``notify_cost_usd``, and every
``notify_every_hours`` of training (with the latest preview attached where the service takes
attachments). Sending happens on a worker thread, so a slow service never holds up a run; a
notification that cannot be sent never fails the job and is logged once per URL. The URLs are
credentials: only their scheme is ever shown (:func:`redact`), and Apprise's own log is muted.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faceswap_oci import events as ev
from faceswap_oci.spec import redact_url as redact

log = logging.getLogger(__name__)
# Apprise logs the services it sends to, URL parts included.
logging.getLogger("apprise").setLevel(logging.CRITICAL + 1)

SEND_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Message:
    kind: str
    title: str
    body: str
    attach: str | None = None
    failure: bool = False


@dataclass(frozen=True)
class Sent:
    url: str  # redacted
    ok: bool


class Notifier:
    """Turns a run's typed events into notifications and sends them (one worker thread)."""

    def __init__(
        self,
        urls: Sequence[str],
        job: str,
        *,
        output: Path | None = None,
        cost_threshold: float | None = None,
        every_hours: float | None = None,
        hourly_usd: float | None = None,
    ) -> None:
        import apprise

        self.job = job
        self.output = output
        self.cost_threshold = cost_threshold
        self.every_s = every_hours * 3600 if every_hours else None
        self.hourly_usd = hourly_usd
        self._targets: list[tuple[str, Any]] = []
        self._warned: set[str] = set()
        for index, url in enumerate(urls):
            target = apprise.Apprise()
            shown = f"notify[{index}] {redact(url)}"
            if not target.add(url):
                self._warn_once(shown, "Apprise does not recognise this URL; check its syntax")
                continue
            self._targets.append((shown, target))
        self._started = time.time()
        self._train_since: float | None = None
        self._last_periodic: float | None = None
        self._cost_sent = False
        self._cost: dict[str, Any] | None = None
        self._preview: str | None = None
        self._teardown_failed = False
        self._queue: queue.Queue[Message | None] = queue.Queue()
        self._results: list[tuple[str, Sent]] = []
        self._worker: threading.Thread | None = None

    # decisions ---------------------------------------------------------------
    def messages(self, event: ev.Event) -> list[Message]:
        """The notifications one event makes (none for most)."""
        job = self.job
        found: list[Message] = []
        if isinstance(event, ev.PreviewUpdated):
            self._preview = event.path or None
        elif isinstance(event, ev.Report) and event.report == "cost":
            self._cost = dict(event.data)
            found += self._cost_check(float(event.data.get("total_usd") or 0))
        elif isinstance(event, ev.Report) and event.report in ("preempted", "recovered"):
            detail = ", ".join(f"{k}: {v}" for k, v in sorted(event.data.items()))
            found.append(
                Message(
                    event.report,
                    f"faceswap-oci {job}: {event.report}",
                    f"Job {job} was {event.report} during {event.phase}. {detail}".strip(),
                    failure=event.report == "preempted",
                )
            )
        elif (
            isinstance(event, ev.PhaseFinished)
            and event.phase == "teardown"
            and event.status is ev.PhaseStatus.FAILED
        ):
            self._teardown_failed = True
            found.append(
                Message(
                    "teardown_failed",
                    f"faceswap-oci {job}: teardown FAILED",
                    f"The teardown of job {job} failed: resources may still be billing. Run "
                    f"`faceswap-oci down <job.yml>` or `faceswap-oci sweep <job.yml> --yes`.",
                    failure=True,
                )
            )
        elif isinstance(event, ev.JobFailed):
            if not (event.phase == "teardown" and self._teardown_failed):
                found.append(
                    Message(
                        "phase_failed",
                        f"faceswap-oci {job}: {event.phase} failed",
                        f"Phase {event.phase} of job {job} failed: {event.message}",
                        failure=True,
                    )
                )
        elif isinstance(event, ev.JobFinished) and event.status == "successful":
            video = self.output / f"{job}.mp4" if self.output else None
            cost = self._cost or {}
            cost_text = (
                f" Cost (list price): ${cost['total_usd']} on {cost.get('shape')}."
                if "total_usd" in cost
                else ""
            )
            found.append(
                Message(
                    "finished",
                    f"faceswap-oci {job}: finished",
                    f"Job {job} finished. Output: {video}.{cost_text}",
                )
            )
        elif isinstance(event, ev.Progress) and event.phase == "train":
            now = event.at
            if self._train_since is None:
                self._train_since = self._last_periodic = now
            if self.every_s and self._last_periodic and now - self._last_periodic >= self.every_s:
                self._last_periodic = now
                data = event.data
                found.append(
                    Message(
                        "training",
                        f"faceswap-oci {job}: training, iteration {data.get('iteration')}",
                        f"Job {job} at iteration {data.get('iteration')}"
                        f"{'/' + str(data['target']) if data.get('target') else ''}: loss A "
                        f"{data.get('loss_a')}, loss B {data.get('loss_b')}, "
                        f"{data.get('it_per_s')} it/s.",
                        attach=self._preview
                        if self._preview and Path(self._preview).is_file()
                        else None,
                    )
                )
        if self.hourly_usd and not self._cost_sent:
            found += self._cost_check(self.hourly_usd * (event.at - self._started) / 3600)
        return found

    def _cost_check(self, usd: float) -> list[Message]:
        if self.cost_threshold is None or self._cost_sent or usd < self.cost_threshold:
            return []
        self._cost_sent = True
        return [
            Message(
                "cost",
                f"faceswap-oci {self.job}: cost ${usd:.2f}",
                f"Job {self.job} has cost ${usd:.2f} (list price) so far, over the "
                f"notify_cost_usd threshold of ${self.cost_threshold:.2f}.",
            )
        ]

    # sending -----------------------------------------------------------------
    def __call__(self, event: ev.Event) -> None:
        if not self._targets:
            return
        for message in self.messages(event):
            self._enqueue(message)

    def _enqueue(self, message: Message) -> None:
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="fsoci-notify", daemon=True)
            self._worker.start()
        self._queue.put(message)

    def _work(self) -> None:
        while (message := self._queue.get()) is not None:
            for sent in self.send(message):
                self._results.append((message.kind, sent))
            self._queue.task_done()
        self._queue.task_done()

    def send(self, message: Message) -> list[Sent]:
        """Send one message to every URL now; a failure is logged once per URL."""
        import apprise

        results = []
        for shown, target in self._targets:
            try:
                ok = bool(
                    target.notify(
                        body=message.body,
                        title=message.title,
                        notify_type=apprise.NotifyType.FAILURE
                        if message.failure
                        else apprise.NotifyType.INFO,
                        attach=message.attach,
                    )
                )
            except Exception:
                ok = False
            if not ok:
                self._warn_once(shown, "could not send (the job goes on)")
            results.append(Sent(shown, ok))
        return results

    def _warn_once(self, shown: str, why: str) -> None:
        if shown in self._warned:
            return
        self._warned.add(shown)
        log.warning("%s: %s; later failures of this URL are not logged", shown, why)

    def close(self, timeout: float = SEND_TIMEOUT_S) -> None:
        """Wait (bounded) for the queued notifications to go out, then stop the worker."""
        if self._worker is None:
            return
        self._queue.put(None)
        self._worker.join(timeout)
        self._worker = None

    @property
    def results(self) -> list[tuple[str, Sent]]:
        return list(self._results)

    @property
    def warned(self) -> Iterable[str]:
        return sorted(self._warned)


def for_spec(spec: dict[str, Any], output: Path | None) -> Notifier | None:
    """The notifier of a job (None without ``notify`` URLs); OCI jobs get a running cost."""
    urls = list(spec.get("notify") or [])
    if not urls:
        return None
    hourly = None
    target = spec.get("target") or {}
    oci = target.get("oci") if target.get("kind") == "oci" else None
    if spec.get("notify_cost_usd") and isinstance(oci, dict):
        from faceswap_oci import cost

        try:
            hourly = cost.estimate(
                str((oci.get("shapes") or [""])[0]),
                1.0,
                bool(oci.get("preemptible")),
                int(oci.get("boot_volume_gb") or 0),
            ).total_usd
        except (cost.UnknownShapePrice, ValueError):
            hourly = None
    return Notifier(
        urls,
        str(spec.get("name")),
        output=output,
        cost_threshold=spec.get("notify_cost_usd"),
        every_hours=spec.get("notify_every_hours"),
        hourly_usd=hourly,
    )

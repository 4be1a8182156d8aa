"""The `faceswap-oci` command line: a thin layer over the Python API."""

from __future__ import annotations

import enum
import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table

from faceswap_oci import api
from faceswap_oci import events as ev
from faceswap_oci.errors import (
    BadArgument,
    DetachRefused,
    FaceswapOciError,
    ResourcesLeft,
    StateError,
)
from faceswap_oci.runner import PHASES, JobResult
from faceswap_oci.spec import json_schema, load_job
from faceswap_oci.state import StateDir, check_state_root, default_state_root, list_jobs

EXIT_CODES = """Exit codes: 0 done; 1 declined at the Proceed? question; 2 usage error (unknown option or phase, bad argument); 2 bad job file or OCI config (the message names the file and line), or a `check` item failed; 3 bad state (no such job, a damaged state file, the job is locked by another command); 4 a phase failed; 5 teardown did not finish (cloud resources may be left; the message names them); 130 interrupted."""  # noqa: E501

CONTEXT = {"help_option_names": ["-h", "--help"]}
SCHEMA_FILE = "faceswap-oci.schema.json"

app = typer.Typer(
    add_completion=True,
    no_args_is_help=True,
    context_settings=CONTEXT,
    help="Run Faceswap (extract, train, convert) unattended on OCI, an SSH host or this "
    "machine.\n\n" + EXIT_CODES,
)
source_app = typer.Typer(
    no_args_is_help=True, context_settings=CONTEXT, help="The controller's Faceswap source cache."
)
app.add_typer(source_app, name="source")

Phase = enum.Enum("Phase", {p: p for p in PHASES}, type=str)  # type: ignore[misc]
"""The phases, as choices of --from/--only (so --help lists them and a typo exits 2)."""


def _version(value: bool) -> None:
    if value:
        from faceswap_oci import __version__

        print(f"faceswap-oci {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Run Faceswap (extract, train, convert) unattended on OCI, an SSH host or this machine."""


# markup off: paths and values from the job file are printed as they are (a "[" in one is
# no rich markup, and an unbalanced one is no MarkupError)
err = Console(stderr=True, markup=False, soft_wrap=True)
out = Console(markup=False)


def _state_root(value: Path | None) -> Path | None:
    if value is None:
        return None
    try:
        return check_state_root(value)
    except StateError as exc:
        _fail(exc)
        raise  # unreachable: _fail exits


StateRoot = Annotated[
    Path | None,
    typer.Option(
        "--state-dir", help="Where job state lives (default: XDG state dir).", callback=_state_root
    ),
]
JobFile = Annotated[Path, typer.Argument(help="The job file (YAML).", show_default=False)]


def _fail(exc: FaceswapOciError) -> None:
    err.print(
        f"[bold red]error:[/] {escape(str(exc))}", highlight=False, markup=True, soft_wrap=True
    )
    raise typer.Exit(exc.exit_code)


def _guard(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except FaceswapOciError as exc:
        _fail(exc)


def _example_text() -> str:
    here = Path(__file__).resolve().parent
    for candidate in (
        here / "examples" / "job.example.yml",
        here.parents[1] / "examples" / "job.example.yml",
    ):
        if candidate.is_file():
            return candidate.read_text()
    raise FaceswapOciError("the example job file is missing from this installation; reinstall")


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the example.")] = Path("job.yml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented example job file."""
    if path.exists() and not force:
        err.print(f"error: {path} exists; pass --force to overwrite it")
        raise typer.Exit(2)
    text = _guard(_example_text)
    # the editor's schema (yaml-language-server, VS Code's YAML extension), written beside
    schema_file = path.with_name(SCHEMA_FILE)
    text = f"# yaml-language-server: $schema=./{SCHEMA_FILE}\n" + text
    try:
        path.write_text(text)
        schema_file.write_text(json.dumps(json_schema(), indent=2) + "\n")
    except OSError as exc:
        folder = path.parent
        hint = f"create {folder} first" if not folder.is_dir() else "give a path you can write"
        _fail(BadArgument(f"cannot write {path}: {exc.strerror}; {hint}"))
    out.print(f"wrote {path} (and {schema_file}); edit it, then: faceswap-oci plan {path}")


@app.command()
def schema() -> None:
    """Print the JSON Schema of the job file (for editors)."""
    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")


def _plan_json(result: api.Plan) -> dict[str, Any]:
    return {
        "job": result.job,
        "target": result.target,
        "state_dir": str(result.state_dir),
        "output_dir": str(result.output_dir),
        "cost": result.cost,
        "host": result.host.__dict__ if result.host else None,
        "phases": [p.__dict__ for p in result.phases],
        "warnings": list(result.warnings),
        "detach": list(result.detach),
    }


def _print_plan(result: api.Plan, console: Console) -> None:
    table = Table(title=f"job {result.job} on {result.target}", show_lines=False)
    for column in ("phase", "action", "what", "why"):
        table.add_column(column)
    for p in result.phases:
        table.add_row(p.name, "run" if p.will_run else "skip", p.description, p.reason)
    console.print(table)
    if result.host:
        console.print(f"image:  {result.host.image}")
        console.print(f"python: {result.host.python}")
    for line in result.detach:
        console.print(line, highlight=False, markup=False)
    for warning in result.warnings:
        err.print(f"warning: {warning}", highlight=False, markup=False)
    if result.cost and "error" in result.cost:
        console.print(f"estimated cost: unknown ({result.cost['error']})")
    elif result.cost:
        c = result.cost
        per_phase = ", ".join(f"{k} ${v}" for k, v in c["phases"].items())
        console.print(
            f"estimated cost: ${c['usd']} for {c['hours']} GPU-hours on {c['shape']}"
            f"{' (preemptible)' if c['preemptible'] else ''}; {per_phase}; "
            f"{c['share_outside_training']:.0%} of GPU time outside training "
            f"(list prices: {c['source']}, {c['as_of']})"
        )
        for rung in c.get("rungs", [])[1:]:
            kind = "preemptible" if rung["preemptible"] else "on demand"
            if "error" in rung:
                console.print(f"  if the ladder reaches {rung['shape']} ({kind}): {rung['error']}")
                continue
            console.print(
                f"  if the ladder reaches {rung['shape']} ({kind}): ${rung['usd']} "
                f"(${rung['usd_per_hour']}/h, price of {rung['as_of']})"
            )
    else:
        console.print("estimated cost: $0 (no cloud resources)")
    console.print(f"state: {result.state_dir}\noutput: {result.output_dir}")


FromPhase = Annotated[
    Phase | None, typer.Option("--from", help="Re-run from this phase on.", show_default=False)
]
OnlyPhase = Annotated[
    Phase | None, typer.Option("--only", help="Run only this phase.", show_default=False)
]


def _phase(value: Any) -> str | None:
    return None if value is None else str(value.value)


@app.command(
    help=(
        "Show what a run would do (phases, target, cost) without doing it; writes nothing, and a "
        "missing input is a warning."
    ),
)
def plan(
    job_file: JobFile,
    state_dir: StateRoot = None,
    from_phase: FromPhase = None,
    only: OnlyPhase = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    job = _guard(lambda: load_job(job_file, write=False))
    result = _guard(
        lambda: api.plan(
            job, state_root=state_dir, from_phase=_phase(from_phase), only=_phase(only)
        )
    )
    if as_json:
        sys.stdout.write(json.dumps(_plan_json(result)) + "\n")
        return
    _print_plan(result, out)


def _duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "-"
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def _trend(now: Any, before: Any) -> str:
    if not isinstance(now, int | float) or not isinstance(before, int | float) or now == before:
        return ""
    return " ↓" if now < before else " ↑"


class TrainProgress:
    """What the training's progress line shows, from the Progress events of one run: the
    iteration out of the target (and %), it/s, ETA to the target and to the hours budget, the
    latest loss A and B with their trend, elapsed time, and on OCI the cost so far."""

    def __init__(
        self, hours: float | None = None, usd_per_hour: float | None = None, now: Any = None
    ) -> None:
        self.hours = hours
        self.usd_per_hour = usd_per_hour
        self.clock = now or time.time
        self.started = self.clock()
        self.data: dict[str, Any] = {}
        self.previous: dict[str, Any] = {}

    def update(self, data: dict[str, Any]) -> None:
        if data.get("iteration") != self.data.get("iteration"):
            self.previous = self.data
        self.data = dict(data)

    def fields(self) -> dict[str, str]:
        d = self.data
        iteration: int = d["iteration"] if isinstance(d.get("iteration"), int) else 0
        target: int | None = d["target"] if isinstance(d.get("target"), int) else None
        rate = d.get("it_per_s") if isinstance(d.get("it_per_s"), int | float) else None
        elapsed = self.clock() - self.started
        eta = (target - iteration) / rate if target and rate else None
        budget = self.hours * 3600 - elapsed if self.hours else None

        def loss(key: str) -> str:
            value = d.get(key)
            if not isinstance(value, int | float):
                return "-"
            return f"{value:.4f}{_trend(value, self.previous.get(key))}"

        cost = (
            f"${self.usd_per_hour * elapsed / 3600:.2f} so far"
            if self.usd_per_hour is not None
            else ""
        )
        return {
            "iteration": f"{iteration}/{target}" if target else str(iteration),
            "percent": f"{100 * iteration / target:.0f}%" if target else "-",
            "rate": f"{rate:.2f} it/s" if rate else "- it/s",
            "eta": f"ETA {_duration(max(eta, 0.0)) if eta is not None else '-'}",
            "budget": f"budget {_duration(budget)} left" if budget is not None else "",
            "loss": f"loss A {loss('loss_a')} B {loss('loss_b')}",
            "elapsed": f"elapsed {_duration(elapsed)}",
            "cost": cost,
        }

    def line(self) -> str:
        f = self.fields()
        parts = [f["iteration"], f"({f['percent']})", f["rate"], f["eta"], f["budget"]]
        parts += [f["loss"], f["elapsed"], f["cost"]]
        return " ".join(p for p in parts if p)


class _Display:
    """On a terminal: the phase list and a rich progress bar for training, with the reports
    and failures printed above it; plain lines otherwise; JSON lines with --json."""

    def __init__(
        self,
        as_json: bool,
        job: Any = None,
        console: Console | None = None,
        tty: bool | None = None,
    ) -> None:
        self.as_json = as_json
        self.console = console or out
        self.tty = (sys.stdout.isatty() if tty is None else tty) and not as_json
        self.status: dict[str, str] = {p: "" for p in PHASES}
        self.current = ""
        self.started = time.monotonic()
        self.live: Live | None = None
        hours, price = None, None
        if job is not None:
            hours = job.spec.train.stop.hours
            price = _usd_per_hour(job)
        self.train = TrainProgress(hours, price)
        self.bar = Progress(
            TextColumn("train"),
            BarColumn(),
            TextColumn("{task.fields[iteration]} {task.fields[percent]}"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("{task.fields[eta]}"),
            TextColumn("{task.fields[budget]}"),
            TextColumn("{task.fields[loss]}"),
            TextColumn("{task.fields[elapsed]}"),
            TextColumn("{task.fields[cost]}"),
            console=self.console,
            auto_refresh=False,
        )
        self.task: TaskID | None = None
        self.done_paths: list[str] = []

    def __enter__(self) -> _Display:
        if self.tty:
            self.live = Live(
                self._render(), console=self.console, refresh_per_second=4, transient=False
            )
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.update(self._render())
            self.live.__exit__(None, None, None)

    def _render(self) -> Group:
        elapsed = int(time.monotonic() - self.started)
        table = Table(title=f"faceswap-oci  {elapsed // 60:d}m{elapsed % 60:02d}s", box=None)
        table.add_column("phase")
        table.add_column("state")
        for phase in PHASES:
            table.add_row(phase, self.status.get(phase, ""))
        table.add_row("", "")
        table.add_row("task", self.current)
        parts: list[Any] = [table]
        if self.task is not None:
            parts.append(self.bar.get_renderable())
        return Group(*parts)

    def _line(self, text: str, *, always: bool = False) -> None:
        """A line of its own: printed in plain mode, and above the live display on a terminal
        when ``always`` (reports, failures)."""
        if not self.tty:
            print(text, flush=True)
        elif always:
            self.console.print(text, highlight=False, markup=False, soft_wrap=True)

    def _progress(self, data: dict[str, Any]) -> None:
        self.train.update(data)
        fields: dict[str, Any] = dict(self.train.fields())
        target = data.get("target") if isinstance(data.get("target"), int) else None
        iteration = data.get("iteration") if isinstance(data.get("iteration"), int) else 0
        if self.task is None:
            self.task = self.bar.add_task("train", total=target, **fields)
        self.bar.update(self.task, total=target, completed=iteration, **fields)

    def __call__(self, event: ev.Event) -> None:
        if self.as_json:
            # one write per event, newline included (print writes the text and the end apart)
            sys.stdout.write(event.to_json() + "\n")
            sys.stdout.flush()
            return
        if isinstance(event, ev.PhaseStarted):
            self.status[event.phase] = "running"
            self._line(f"[{event.phase}] started")
        elif isinstance(event, ev.PhaseSkipped):
            self.status[event.phase] = "done (skipped)"
            self._line(f"[{event.phase}] skipped: {event.reason}")
        elif isinstance(event, ev.PhaseFinished):
            self.status[event.phase] = f"{event.status.value} ({event.duration_s:.0f}s)"
            self._line(
                f"[{event.phase}] {event.status.value} in {event.duration_s:.1f}s, "
                f"{event.changed} changed"
            )
        elif isinstance(event, ev.TaskStarted):
            self.current = f"{event.phase}: {event.task}"
        elif isinstance(event, ev.TaskDone) and event.status in (
            ev.TaskStatus.FAILED,
            ev.TaskStatus.UNREACHABLE,
        ):
            self._line(f"[{event.phase}] FAILED {event.task}: {event.message}", always=True)
        elif isinstance(event, ev.Progress):
            if event.phase == "train":
                self._progress(event.data)
                self._line(f"[train] {self.train.line()}")
            else:
                text = " ".join(f"{k}={v}" for k, v in event.data.items())
                self._line(f"[{event.phase}] {text}")
        elif isinstance(event, ev.Report):
            self._line(f"[{event.phase}] {_report_text(event)}", always=True)
        elif isinstance(event, ev.PreviewUpdated):
            self.done_paths = [event.path]
        if self.live is not None:
            self.live.update(self._render())


def _report_text(event: ev.Report) -> str:
    data = event.data
    if isinstance(data.get("note"), str) and len(data) == 1:
        return f"{event.report}: {data['note']}"
    shown = ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in data.items())
    return f"{event.report}: {shown}"


def _usd_per_hour(job: Any) -> float | None:
    oci = job.spec.target.oci
    if job.spec.target.kind != "oci" or oci is None:
        return None
    from faceswap_oci import cost

    try:
        return float(cost.estimate(oci.shapes[0], 1, oci.preemptible, 0).usd_per_hour)
    except (cost.UnknownShapePrice, ValueError):
        return None


def _summarise(result: JobResult, as_json: bool) -> None:
    if as_json and not result.resources_left:
        return  # the events on stdout say it all; what may cost money goes to stderr too
    if result.detached:
        out.print(
            f"job {result.name}: handed over to its VM, which trains, stores the results in "
            f"the job bucket and ends its own billing; follow it with `faceswap-oci attach "
            f"{result.name}` (state: {result.state_dir})",
            highlight=False,
        )
        return
    if result.ok:
        out.print(
            f"job {result.name}: {result.status}; phases run: {', '.join(result.phases_run) or '-'}"
            f"; {result.changed} changed; output: {result.output_dir}"
        )
        if result.cost and "error" not in result.cost:
            out.print(_billed_text(result.cost))
        for label, name in (
            ("video", f"{result.name}.mp4"),
            ("manifest", f"{result.name}.manifest.json"),
            ("preview", f"{result.name}.preview.png"),
        ):
            path = result.output_dir / name
            if path.is_file():
                out.print(f"{label + ':':<9} {path}", highlight=False)
        return
    err.print(f"job {result.name}: {result.status}: {result.error}", highlight=False, markup=False)
    if result.resources_left:
        err.print("resources may be left (they cost money until removed):", markup=False)
        for line in result.resources_left:
            err.print(f"  - {line}", highlight=False, markup=False)
    if result.status == "canceled":
        err.print(f"resume with: faceswap-oci run <job.yml> (state: {result.state_dir})")


def _exit_code(result: JobResult) -> int:
    if result.resources_left:
        return ResourcesLeft.exit_code
    return 130 if result.status == "canceled" else 4


def _interactive() -> bool:
    """Whether the Proceed? question can be asked (stdin and stderr are a terminal)."""
    return sys.stdin.isatty() and sys.stderr.isatty()


def _confirm(result: api.Plan, yes: bool, as_json: bool) -> None:
    """Show the plan; on OCI, or whenever the estimate is over $0, ask before spending."""
    _print_plan(result, err if as_json else out)
    cost = result.cost or {}
    usd = float(cost.get("usd") or 0)
    paid = result.target.startswith("oci") or usd > 0
    if not paid or yes:
        return
    why = (
        f"this run launches OCI resources that bill (estimated ${usd:.2f})"
        if "usd" in cost
        else "this run launches OCI resources that bill (estimate unknown)"
    )
    if not _interactive():
        err.print(
            f"error: {why}; there is no terminal to ask on: pass --yes to proceed",
            highlight=False,
        )
        raise typer.Exit(BadArgument.exit_code)
    if not typer.confirm(f"{why}. Proceed?", default=False, err=True):
        err.print("nothing ran (declined)", highlight=False)
        raise typer.Exit(1)


@app.command(
    help=(
        "Run a job, or resume it at the first unfinished phase; shows the plan first and, on OCI "
        "or when the estimate is over $0, asks Proceed? [y/N] (-y skips the question)."
    ),
)
def run(
    job_file: JobFile,
    state_dir: StateRoot = None,
    from_phase: FromPhase = None,
    only: OnlyPhase = None,
    yes: Annotated[
        bool, typer.Option("-y", "--yes", help="Do not ask before launching paid resources.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON event per line.")] = False,
    verbose: Annotated[int, typer.Option("-v", count=True, help="Ansible verbosity.")] = 0,
    detach: Annotated[
        bool,
        typer.Option(
            "--detach",
            help="OCI: hand the job to the VM's agent and exit (target.oci.detach; "
            "docs/detach.md).",
        ),
    ] = False,
) -> None:
    job = _guard(lambda: load_job(job_file))
    start, just = _phase(from_phase), _phase(only)
    planned = _guard(
        lambda: api.plan(job, state_root=state_dir, from_phase=start, only=just, detach=detach)
    )
    if planned.detach_refused:
        _fail(DetachRefused(planned.detach_refused))
    _confirm(planned, yes, as_json)
    with _Display(as_json, job) as display:
        result: JobResult = _guard(
            lambda: api.run(
                job,
                on_event=display,
                state_root=state_dir,
                from_phase=start,
                only=just,
                verbosity=verbose,
                detach=detach,
            )
        )
    _summarise(result, as_json)
    if not result.ok or result.resources_left:
        raise typer.Exit(_exit_code(result))


JobRef = Annotated[
    str,
    typer.Argument(help="A job name (as `status` lists it) or its job file.", show_default=False),
]


def _stop_or_down(call: Callable[..., JobResult]) -> Callable[..., None]:
    """The command of ``stop`` and ``down``, which differ only in the API call."""

    def command(
        job: JobRef,
        state_dir: StateRoot = None,
        as_json: Annotated[bool, typer.Option("--json", help="One JSON event per line.")] = False,
    ) -> None:
        _end(call, job, state_dir, as_json)

    return command


@app.command(
    help=(
        "Follow a detached OCI job again (from any controller with its job file and OCI "
        "config): the instance's state, the latest snapshot and the agent's done marker; a "
        "finished job's results are fetched, checked and the job torn down."
    ),
)
def attach(
    job_ref: JobRef,
    state_dir: StateRoot = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    found: api.Attached = _guard(lambda: api.attach(job_ref, state_root=state_dir))
    seen = found.seen
    latest = seen.get("latest")
    done = seen.get("done")
    if as_json:
        print(
            json.dumps(
                {
                    "job": found.job,
                    "state": found.state,
                    **seen,
                    "fetched": [str(p) for p in found.fetched],
                },
                default=str,
            )
        )
    else:
        out.print(f"job {found.job}: {found.state}", highlight=False)
        out.print(f"  instance: {seen.get('instance')}", highlight=False)
        if isinstance(latest, dict):
            out.print(
                f"  latest snapshot: iteration {latest.get('iteration')} "
                f"({latest.get('snapshot')})",
                highlight=False,
            )
        else:
            out.print(f"  latest snapshot: {latest or 'none yet'}", highlight=False)
        if isinstance(done, dict) and done.get("state") == "failed":
            out.print(f"  failed at {done.get('step')}: {done.get('reason')}", highlight=False)
        for path in found.fetched:
            out.print(f"  fetched: {path}", highlight=False)
    if found.result is not None and (not found.result.ok or found.result.resources_left):
        raise typer.Exit(_exit_code(found.result))
    if found.state == "failed":
        raise typer.Exit(4)


app.command(
    "down",
    help=(
        "Stop the job: on OCI tear down every cloud resource it created (found by its tag); on "
        "ssh and local targets as `stop` does. A finished job stays finished."
    ),
)(_stop_or_down(api.down))


def _end(call: Callable[..., JobResult], job: str, state_dir: Path | None, as_json: bool) -> None:
    loaded = _guard(lambda: api._as_job(job, state_dir))
    with _Display(as_json, loaded) as display:
        result = _guard(lambda: call(loaded, on_event=display, state_root=state_dir))
    if loaded.spec.target.kind != "oci" and not as_json and result.ok:
        out.print(
            "training saved and stopped; `faceswap-oci run` resumes it"
            if result.changed
            else "no training of this job was running; nothing to stop"
        )
    else:
        _summarise(result, as_json)
    if not result.ok or result.resources_left:
        raise typer.Exit(_exit_code(result))


app.command(
    "stop",
    help=(
        "ssh and local targets: make the job's training save its model and pause (`run` resumes "
        "it)."
    ),
)(_stop_or_down(api.stop))


@app.command(
    help=(
        "Check what a job needs before it runs, read-only: tools, OS packages, the OCI config and"
        " signer, one API call per service, the compartment, GPU limits per availability domain, "
        "the ssh host, the source cache, disk space. Exits 2 when an item fails."
    ),
)
def check(
    job: Annotated[
        str | None,
        typer.Argument(
            help="A job file or job name (default: only this machine).", show_default=False
        ),
    ] = None,
    state_dir: StateRoot = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    detach: Annotated[
        bool,
        typer.Option("--detach", help="OCI: also check the policy `run --detach` needs."),
    ] = False,
) -> None:
    items = _guard(lambda: api.check(job, state_root=state_dir, detach=detach))
    if as_json:
        for item in items:
            print(json.dumps(item.__dict__))
    else:
        style = {"ok": "green", "warn": "yellow", "fail": "bold red"}
        for item in items:
            out.print(
                f"[{style[item.level]}]{item.level:<4}[/]  {escape(item.line()[6:])}",
                markup=True,
                highlight=False,
                soft_wrap=True,
            )
    failed = [i for i in items if i.level == "fail"]
    if failed:
        err.print(f"{len(failed)} item(s) failed")
        raise typer.Exit(2)


@app.command(
    help=(
        "List every faceswap-oci resource in the job's OCI compartment and region, by job; with "
        "--yes remove those of jobs not running from this machine."
    ),
)
def sweep(
    job_file: JobFile,
    yes: Annotated[
        bool, typer.Option("--yes", help="Remove them (default: only list them).")
    ] = False,
    state_dir: StateRoot = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    job = _guard(lambda: load_job(job_file))
    result = _guard(lambda: api.sweep(job, remove=yes, state_root=state_dir))
    if as_json:
        data = {
            "resources": {k: list(v) for k, v in result.resources.items()},
            "running": list(result.running),
            "removed": list(result.removed),
        }
        sys.stdout.write(json.dumps(data, default=str) + "\n")
        return
    out.print(result.summary())
    left = [n for n in result.resources if n not in result.running and n not in result.removed]
    if left and not yes:
        out.print("remove them with: faceswap-oci sweep <job.yml> --yes")


def _billed_text(run: dict[str, Any]) -> str:
    """One run of the cost history: what it billed (instances it terminated) and what runs."""
    parts = [
        f"{b['shape']}{' preemptible' if b['preemptible'] else ''} "
        f"{b['billed_seconds'] / 3600:.3f} h"
        for b in run.get("instances", [])
    ]
    text = f"billed (list price): ${run['total_usd']:.2f}" + (
        f" ({'; '.join(parts)})" if parts else " (no instance ended in this run)"
    )
    for b in run.get("running", []):
        text += f"; still running: {b['instance_id']} ({b['shape']}, ${b['total_usd']:.2f} so far)"
    return text


@app.command()
def cost(
    name: Annotated[str, typer.Argument(help="Job name.")],
    state_dir: StateRoot = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show a job's billed cost: every run, and the total (list prices)."""
    from faceswap_oci import cost as cost_mod

    state = StateDir.for_job(name, state_dir or default_state_root())
    if not state.path.is_dir():
        err.print(f"error: no job {name!r} in {state.path.parent}; see `faceswap-oci status`")
        raise typer.Exit(3)
    ledger = cost_mod.Ledger.load(state.path)
    total = ledger.total()
    if as_json:
        print(json.dumps({"job": name, "runs": ledger.runs, **total}, default=str))
        return
    if not ledger.runs:
        out.print(f"job {name}: no run recorded a cost yet")
    for i, run in enumerate(ledger.runs, 1):
        phases = ",".join(run.get("phases") or []) or "-"
        out.print(
            f"run {i} {run['started'][:19]} {run['status']:<10} {phases:<24} " + _billed_text(run),
            soft_wrap=True,
            highlight=False,
        )
    out.print(
        f"total billed: ${total['billed_usd']:.2f}"
        + (
            f" (+${total['running_usd']:.2f} on instances still running)"
            if total["running_usd"]
            else ""
        ),
        soft_wrap=True,
        highlight=False,
    )


def _age(stamp: Any) -> str:
    if not isinstance(stamp, int | float) or not stamp:
        return "-"
    return _duration(max(time.time() - float(stamp), 0.0)) + " ago"


def _loss(row: dict[str, Any]) -> str:
    a, b = row.get("loss_a"), row.get("loss_b")
    if not isinstance(a, int | float) and not isinstance(b, int | float):
        return "-"
    return f"A {a if a is not None else '-'} B {b if b is not None else '-'}"


def _iterations(row: dict[str, Any]) -> str:
    done, target = row.get("iteration"), row.get("target_iterations")
    if done is None and target is None:
        return "-"
    return f"{done if done is not None else 0}/{target if target is not None else '?'}"


def _wide() -> Console:
    """The console for tables: a pipe or file gets them 200 columns wide, unwrapped."""
    return out if out.is_terminal else Console(markup=False, width=200)


def _status_table(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, show_lines=False)
    for column in ("job", "target", "state", "phase", "iteration", "last loss", "cost", "age"):
        table.add_column(column, overflow="fold")
    table.add_column("output", overflow="fold")
    for row in rows:
        cost = row.get("cost_usd")
        table.add_row(
            str(row.get("name")),
            str(row.get("target") or "-"),
            str(row.get("state") or "-"),
            str(row.get("phase") or "-"),
            _iterations(row),
            _loss(row),
            f"${cost:.2f}" if isinstance(cost, int | float) else "-",
            _age(row.get("updated")),
            str(row.get("output") or row.get("output_dir") or "-"),
        )
    return table


@app.command(
    help=(
        "List jobs in a table (job, target, state, phase, iteration, last loss, cost, age, "
        "output), or show one job in detail. A running job whose process is gone shows as "
        "interrupted."
    ),
)
def status(
    name: Annotated[str | None, typer.Argument(help="A job name for details.")] = None,
    state_dir: StateRoot = None,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="OCI: ask the API whether the instance is alive.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    root = state_dir or default_state_root()
    if name is None:
        rows: list[dict[str, Any]] = []
        damaged: list[StateError] = []
        for s in list_jobs(root):
            try:
                rows.append(api._summary(s))
            except StateError as exc:  # one damaged job does not hide the others
                damaged.append(exc)
                rows.append({"name": s.path.name, "state": "damaged", "error": str(exc)})
        if refresh:
            rows = [_refreshed(row, root) for row in rows]
        if as_json:
            for row in rows:
                print(json.dumps({"job": row.get("name"), **row}, default=str))
        elif not rows:
            out.print(f"no jobs in {root}")
        else:
            _wide().print(_status_table(rows, f"faceswap-oci jobs in {root}"))
        for problem in damaged:
            err.print(
                f"[bold red]error:[/] {escape(str(problem))}",
                highlight=False,
                markup=True,
                soft_wrap=True,
            )
        if damaged:
            raise typer.Exit(StateError.exit_code)
        return
    state = _guard(lambda: StateDir.for_job(name, root))
    spec = _guard(state.load_spec)
    row = _guard(lambda: api.status(name, root))
    if refresh:
        row = _refreshed(row, root)
    stamps: dict[str, dict[str, Any] | None] = row.pop("stamps")
    if as_json:
        st = _guard(state.status)
        print(
            json.dumps({"job": name, "status": st, "summary": row, "stamps": stamps}, default=str)
        )
        return
    _wide().print(_status_table([row], f"job {name}"))
    out.print(f"  from {spec.get('source')}; state {state.path}", highlight=False)
    for phase in PHASES:
        stamp = stamps[phase]
        when = time.strftime("%H:%M:%S", time.localtime(stamp["finished"])) if stamp else ""
        out.print(f"  {phase:<10} {'done ' + when if stamp else '-'}")
    for key in ("instance", "snapshot", "marker"):
        if key in row:
            out.print(f"  {key}: {row[key]}", highlight=False, markup=False)
    if row.get("note"):
        out.print(f"  {row['note']}")
    if row.get("error"):
        out.print(f"  last error: {row['error']}", highlight=False, markup=False)


def _refreshed(row: dict[str, Any], root: Path) -> dict[str, Any]:
    """The row with ``instance``: what OCI says of the job's instance now; for a detached
    job also ``snapshot`` (the bucket's latest complete snapshot's iteration) and ``marker``
    (the agent's ``done``/``failed``, or ``none``)."""
    try:
        seen = api.detached_state(str(row.get("name")), root)
    except FaceswapOciError as exc:
        seen = {"instance": f"unknown ({exc})"}
    if seen is not None:
        latest, done = seen.get("latest"), seen.get("done")
        return {
            **row,
            "instance": seen.get("instance"),
            "snapshot": latest.get("iteration") if isinstance(latest, dict) else latest,
            "marker": done.get("state") if isinstance(done, dict) else (done or "none"),
        }
    try:
        found = api.instance_state(str(row.get("name")), root)
    except FaceswapOciError as exc:
        found = f"unknown ({exc})"
    return {**row, "instance": found} if found else row


def _event_text(event: dict[str, Any]) -> str:
    """One event as a person reads it: time, run, phase and what happened."""
    when = time.strftime("%H:%M:%S", time.localtime(float(event.get("at") or 0)))
    kind = event.get("event")
    phase = event.get("phase") or "-"
    what: str
    if kind == "PhaseStarted":
        what = "started"
    elif kind == "PhaseSkipped":
        what = f"skipped: {event.get('reason')}"
    elif kind == "PhaseFinished":
        what = f"{event.get('status')} in {float(event.get('duration_s') or 0):.1f}s"
    elif kind == "TaskStarted":
        what = f"task {event.get('task')}"
    elif kind == "TaskDone":
        what = f"{event.get('status')}: {event.get('task')}"
        if event.get("message"):
            what += f": {event.get('message')}"
    elif kind == "Progress":
        data = event.get("data") or {}
        what = f"progress {TrainProgressLine(data)}"
    elif kind == "Report":
        data = event.get("data") or {}
        what = _report_text(ev.Report(phase, report=str(event.get("report")), data=data))
    elif kind == "PreviewUpdated":
        what = f"preview {event.get('path')} (iteration {event.get('iteration')})"
    elif kind == "JobFailed":
        what = f"job failed: {event.get('message')}"
    elif kind == "JobFinished":
        what = f"job {event.get('status')}, {event.get('changed')} changed"
    else:
        what = str(kind)
    run = str(event.get("run") or "-")
    return f"{when} {run} [{phase}] {what}"


def TrainProgressLine(data: dict[str, Any]) -> str:
    keys = ("iteration", "target", "loss_a", "loss_b", "it_per_s", "state")
    return " ".join(f"{k}={data[k]}" for k in keys if data.get(k) is not None)


LogPhase = Annotated[
    Phase | None, typer.Option("--phase", help="Only this phase's events.", show_default=False)
]


@app.command(
    help=(
        "Print the job's event log, one readable line per event with its run id (--json: the JSON"
        " lines); -f follows it and ends with the job."
    ),
)
def logs(
    name: Annotated[str, typer.Argument(help="Job name.")],
    follow: Annotated[
        bool, typer.Option("-f", "--follow", help="Keep printing until the job ends.")
    ] = False,
    tail: Annotated[
        int | None, typer.Option("--tail", "-n", min=1, help="Only the last N events.")
    ] = None,
    phase: LogPhase = None,
    train: Annotated[
        bool, typer.Option("--train", help="Faceswap's own training log, from the host.")
    ] = False,
    task_events: Annotated[
        bool, typer.Option("--tasks", help="Also every task start (hidden by default).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The raw JSON events.")] = False,
    state_dir: StateRoot = None,
) -> None:
    root = state_dir or default_state_root()
    state = _guard(lambda: StateDir.for_job(name, root))
    if train:
        raise typer.Exit(_guard(lambda: api.train_log(name, root, follow=follow, tail=tail)))
    if not state.events_file.is_file():
        err.print(f"error: no events for job {name!r} in {state.path}")
        raise typer.Exit(3)
    wanted = _phase(phase)

    def shown(event: dict[str, Any]) -> bool:
        if wanted is not None and event.get("phase") != wanted:
            return False
        return as_json or task_events or event.get("event") not in ("TaskStarted", "RunnerEvent")

    def emit(lines: list[str]) -> bool:
        """Print; True when the job's run ended (JobFinished)."""
        ended = False
        for line in lines:
            event = json.loads(line)
            ended = ended or event.get("event") == "JobFinished"
            if not shown(event):
                continue
            sys.stdout.write(line if as_json else _event_text(event) + "\n")
        sys.stdout.flush()
        return ended

    lines, offset = _guard(functools.partial(state.event_lines, 0, 1))
    number = len(lines) + 1
    if tail:
        kept = [line for line in lines if shown(json.loads(line))][-tail:]
        emit(kept)
    else:
        emit(lines)
    if not follow:
        return
    while True:
        st = _guard(state.status)
        lines, offset = _guard(functools.partial(state.event_lines, offset, number))
        number += len(lines)
        if emit(lines) or st.get("state") != "running":
            # the run ended (its last event, or its process is gone: "interrupted")
            lines, offset = _guard(functools.partial(state.event_lines, offset, number))
            emit(lines)
            return
        time.sleep(0.5)


@app.command()
def dashboard(
    state_dir: StateRoot = None,
    host: Annotated[
        str | None,
        typer.Option(help="Address to listen on (default 127.0.0.1; others are warned about)."),
    ] = None,
    port: Annotated[int, typer.Option(help="Port (0: any free one).")] = 8765,
    open_browser: Annotated[bool, typer.Option("--open", help="Open it in a browser.")] = False,
) -> None:
    """A local web dashboard of every job: progress, preview, loss curves, events, output."""
    from faceswap_oci.dashboard import DEFAULT_HOST, serve

    root = state_dir or default_state_root()
    _guard(
        lambda: serve(
            root,
            host=host or DEFAULT_HOST,
            port=port,
            allow_remote=host is not None,
            open_browser=open_browser,
            on_ready=lambda url: print(
                f"dashboard: {url} (state: {root}; Ctrl-C stops)", flush=True
            ),
            on_warning=lambda text: err.print(
                f"[bold yellow]warning:[/] {escape(text)}", highlight=False, markup=True
            ),
        )
    )


def _job_state(name: str, state_dir: Path | None) -> StateDir:
    state = StateDir.for_job(name, state_dir or default_state_root())
    _guard(state.load_spec)
    return state


@app.command()
def preview(
    name: Annotated[str, typer.Argument(help="Job name.")],
    state_dir: StateRoot = None,
    open_it: Annotated[bool, typer.Option("--open", help="Open it in the image viewer.")] = False,
    watch: Annotated[
        bool, typer.Option("--watch", help="Print the path again each time it changes.")
    ] = False,
) -> None:
    """Print the path of the job's latest training preview (or open it)."""
    import webbrowser

    state = _job_state(name, state_dir)
    path = state.path / "preview.png"
    if not path.is_file() and not watch:
        err.print(f"error: job {name!r} has no preview yet ({path}); it comes with training")
        raise typer.Exit(3)
    seen = 0.0
    while True:
        mtime = path.stat().st_mtime if path.is_file() else 0.0
        if mtime and mtime != seen:
            seen = mtime
            print(path, flush=True)
            if open_it:
                webbrowser.open(path.as_uri())
        if not watch:
            return
        time.sleep(1.0)


@app.command()
def tensorboard(
    name: Annotated[str, typer.Argument(help="Job name.")],
    state_dir: StateRoot = None,
    port: Annotated[int, typer.Option(help="TensorBoard's port.")] = 6006,
) -> None:
    """Start TensorBoard on the job's loss history (Faceswap's event files, pulled back)."""
    import subprocess

    state = _job_state(name, state_dir)
    logdir = state.path / "tensorboard"
    if not any(logdir.rglob("events.out.tfevents.*")):
        err.print(
            f"error: job {name!r} has no TensorBoard logs yet ({logdir}); they come with training"
        )
        raise typer.Exit(3)
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir)]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    raise typer.Exit(subprocess.call(command))


@app.command("notify-test")
def notify_test(
    name: Annotated[str, typer.Argument(help="Job name.")],
    state_dir: StateRoot = None,
) -> None:
    """Send a test message to the job's `notify` URLs (shown only by their scheme)."""
    from faceswap_oci import notify

    state = _job_state(name, state_dir)
    # the state keeps only the URLs' schemes: the job file has them
    source = Path(str(state.load_spec().get("source")))
    job = _guard(lambda: load_job(source))
    notifier = notify.for_spec(job.spec.model_dump(mode="json"), None)
    if notifier is None:
        err.print(f"error: job {name!r} has no `notify` URLs in its spec; add `notify: [...]`")
        raise typer.Exit(2)
    message = notify.Message(
        "test", f"faceswap-oci {name}: test", f"A test message from faceswap-oci for job {name}."
    )
    results = notifier.send(message)
    for sent in results:
        out.print(f"{sent.url}: {'sent' if sent.ok else 'FAILED'}", highlight=False)
    if not results or not all(s.ok for s in results):
        raise typer.Exit(4)


@app.command("demo-inputs")
def demo_inputs(
    directory: Annotated[Path, typer.Argument(help="Where to write a.mp4 and b.mp4.")],
    frames: Annotated[int, typer.Option(help="Frames per clip.", min=1, max=100_000)] = 64,
) -> None:
    """Write small synthetic A and B clips (with alignments) for a first CPU run."""
    from faceswap_oci import demo

    try:
        made = demo.make_demo_inputs(directory, frames=frames)
    except (OSError, RuntimeError) as exc:
        _fail(BadArgument(f"cannot write the demo clips into {directory}: {exc}"))
    out.print(f"wrote {made}")


@source_app.command("prepare", hidden=True)
def source_prepare(
    ref: Annotated[str, typer.Option(help="Commit, tag or branch.")],
    backend: Annotated[str, typer.Option(help="cpu, nvidia13 or nvidia12.")] = "cpu",
    python: Annotated[str, typer.Option(help="The host's Python, e.g. 3.11.")] = "3.11",
    arch: Annotated[str, typer.Option(help="The host's machine, e.g. x86_64.")] = "x86_64",
    source: Annotated[str | None, typer.Option(help="Repository to add first.")] = None,
    wheels: Annotated[bool, typer.Option(help="Download the wheel set.")] = True,
) -> None:
    """Resolve a Faceswap ref and (optionally) cache its wheels; print JSON (used by setup)."""
    from faceswap_oci import cache

    def prepare() -> dict[str, str]:
        if source:
            cache.add_source(source)
        cache.ensure_source()
        commit = cache.resolve_ref(ref)
        wheel_dir = ""
        if wheels:
            platform = f"manylinux_2_28_{arch}"
            wheel_dir = str(cache.ensure_wheels(commit, backend, python, platform).path)
        return {"commit": commit, "wheels": wheel_dir, "cache": str(cache.cache_root())}

    sys.stdout.write(json.dumps(_guard(prepare)) + "\n")


@source_app.command("add")
def source_add(
    location: Annotated[str, typer.Argument(help="A path or URL of a Faceswap git repository.")],
) -> None:
    """Add (fetch) a Faceswap repository into the controller's source cache."""
    from faceswap_oci import cache

    added = _guard(lambda: cache.add_source(location))
    out.print(f"source cache {added.path}: {len(added.refs)} refs")


def main() -> None:
    app()


if __name__ == "__main__":
    main()

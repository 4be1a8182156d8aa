"""The `faceswap-oci` command line: a thin layer over the Python API."""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from faceswap_oci import api
from faceswap_oci import events as ev
from faceswap_oci.errors import BadArgument, FaceswapOciError, ResourcesLeft, StateError
from faceswap_oci.runner import PHASES, JobResult
from faceswap_oci.spec import json_schema, load_job
from faceswap_oci.state import StateDir, check_state_root, default_state_root, list_jobs

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Run Faceswap (extract, train, convert) unattended on OCI, an SSH host or this machine.",
)
source_app = typer.Typer(no_args_is_help=True, help="The controller's Faceswap source cache.")
app.add_typer(source_app, name="source")

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
    try:
        path.write_text(text)
    except OSError as exc:
        folder = path.parent
        hint = f"create {folder} first" if not folder.is_dir() else "give a path you can write"
        _fail(BadArgument(f"cannot write {path}: {exc.strerror}; {hint}"))
    out.print(f"wrote {path}; edit it, then: faceswap-oci plan {path}")


@app.command()
def schema() -> None:
    """Print the JSON Schema of the job file (for editors)."""
    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")


@app.command()
def plan(
    job_file: JobFile,
    state_dir: StateRoot = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show what a run would do (phases, target, cost) without doing it."""
    job = _guard(lambda: load_job(job_file))
    result = _guard(lambda: api.plan(job, state_root=state_dir))
    if as_json:
        data = {
            "job": result.job,
            "target": result.target,
            "state_dir": str(result.state_dir),
            "output_dir": str(result.output_dir),
            "cost": result.cost,
            "host": result.host.__dict__ if result.host else None,
            "phases": [p.__dict__ for p in result.phases],
            "warnings": list(result.warnings),
        }
        sys.stdout.write(json.dumps(data) + "\n")
        return
    table = Table(title=f"job {result.job} on {result.target}", show_lines=False)
    for column in ("phase", "action", "what", "why"):
        table.add_column(column)
    for p in result.phases:
        table.add_row(p.name, "run" if p.will_run else "skip", p.description, p.reason)
    out.print(table)
    if result.host:
        out.print(f"image:  {result.host.image}")
        out.print(f"python: {result.host.python}")
    for warning in result.warnings:
        err.print(f"warning: {warning}", highlight=False, markup=False)
    if result.cost and "error" in result.cost:
        out.print(f"estimated cost: unknown ({result.cost['error']})")
    elif result.cost:
        c = result.cost
        per_phase = ", ".join(f"{k} ${v}" for k, v in c["phases"].items())
        out.print(
            f"estimated cost: ${c['usd']} for {c['hours']} GPU-hours on {c['shape']}"
            f"{' (preemptible)' if c['preemptible'] else ''}; {per_phase}; "
            f"{c['share_outside_training']:.0%} of GPU time outside training "
            f"(list prices: {c['source']}, {c['as_of']})"
        )
        for rung in c.get("rungs", [])[1:]:
            kind = "preemptible" if rung["preemptible"] else "on demand"
            if "error" in rung:
                out.print(f"  if the ladder reaches {rung['shape']} ({kind}): {rung['error']}")
                continue
            out.print(
                f"  if the ladder reaches {rung['shape']} ({kind}): ${rung['usd']} "
                f"(${rung['usd_per_hour']}/h, price of {rung['as_of']})"
            )
    out.print(f"state: {result.state_dir}\noutput: {result.output_dir}")


class _Display:
    """Live phase list on a terminal; plain lines otherwise; JSON lines with --json."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.tty = sys.stdout.isatty() and not as_json
        self.status: dict[str, str] = {p: "" for p in PHASES}
        self.current = ""
        self.progress = ""
        self.started = time.monotonic()
        self.live: Live | None = None

    def __enter__(self) -> _Display:
        if self.tty:
            self.live = Live(self._render(), console=out, refresh_per_second=4, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.update(self._render())
            self.live.__exit__(None, None, None)

    def _render(self) -> Table:
        elapsed = int(time.monotonic() - self.started)
        table = Table(title=f"faceswap-oci  {elapsed // 60:d}m{elapsed % 60:02d}s", box=None)
        table.add_column("phase")
        table.add_column("state")
        for phase in PHASES:
            table.add_row(phase, self.status.get(phase, ""))
        table.add_row("", "")
        table.add_row("task", self.current)
        if self.progress:
            table.add_row("progress", self.progress)
        return table

    def _line(self, text: str) -> None:
        if not self.tty:
            print(text, flush=True)

    def __call__(self, event: ev.Event) -> None:
        if self.as_json:
            print(event.to_json(), flush=True)
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
        elif isinstance(event, ev.TaskDone) and event.status is ev.TaskStatus.FAILED:
            self._line(f"[{event.phase}] FAILED {event.task}: {event.message}")
        elif isinstance(event, ev.Progress):
            self.progress = " ".join(f"{k}={v}" for k, v in event.data.items())
            self._line(f"[{event.phase}] {self.progress}")
        elif isinstance(event, ev.Report):
            self._line(f"[{event.phase}] {event.report}: {json.dumps(event.data, default=str)}")
        if self.live is not None:
            self.live.update(self._render())


def _summarise(result: JobResult, as_json: bool) -> None:
    if as_json and not result.resources_left:
        return  # the events on stdout say it all; what may cost money goes to stderr too
    if result.ok:
        out.print(
            f"job {result.name}: {result.status}; phases run: {', '.join(result.phases_run) or '-'}"
            f"; {result.changed} changed; output: {result.output_dir}"
        )
        if result.cost and "error" not in result.cost:
            out.print(_billed_text(result.cost))
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


@app.command()
def run(
    job_file: JobFile,
    state_dir: StateRoot = None,
    from_phase: Annotated[
        str | None, typer.Option("--from", help="Re-run from this phase on.")
    ] = None,
    only: Annotated[str | None, typer.Option("--only", help="Run only this phase.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON event per line.")] = False,
    verbose: Annotated[int, typer.Option("-v", count=True, help="Ansible verbosity.")] = 0,
) -> None:
    """Run a job, or resume it at the first unfinished phase."""
    job = _guard(lambda: load_job(job_file))
    with _Display(as_json) as display:
        result: JobResult = _guard(
            lambda: api.run(
                job,
                on_event=display,
                state_root=state_dir,
                from_phase=from_phase,
                only=only,
                verbosity=verbose,
            )
        )
    _summarise(result, as_json)
    if not result.ok or result.resources_left:
        raise typer.Exit(_exit_code(result))


@app.command()
def down(
    job_file: JobFile,
    state_dir: StateRoot = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON event per line.")] = False,
) -> None:
    """Stop the job: on OCI tear down every cloud resource it created (found by its tag); on
    ssh and local targets make its training save the model and stop (`run` resumes it)."""
    job = _guard(lambda: load_job(job_file))
    with _Display(as_json) as display:
        result = _guard(lambda: api.down(job, on_event=display, state_root=state_dir))
    if job.spec.target.kind != "oci" and not as_json and result.ok:
        out.print(
            "training saved and stopped; `faceswap-oci run` resumes it"
            if result.changed
            else "no training of this job was running; nothing to stop"
        )
    else:
        _summarise(result, as_json)
    if not result.ok or result.resources_left:
        raise typer.Exit(_exit_code(result))


@app.command()
def sweep(
    job_file: JobFile,
    yes: Annotated[
        bool, typer.Option("--yes", help="Remove them (default: only list them).")
    ] = False,
    state_dir: StateRoot = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List every faceswap-oci resource in the job's OCI compartment and region, by job; with
    --yes remove those of jobs not running from this machine."""
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


@app.command()
def status(
    name: Annotated[str | None, typer.Argument(help="A job name for details.")] = None,
    state_dir: StateRoot = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List jobs (one line each), or show one job in detail."""
    root = state_dir or default_state_root()
    if name is None:
        rows: list[tuple[str, dict[str, Any]]] = []
        damaged: list[StateError] = []
        for s in list_jobs(root):
            try:
                rows.append((s.path.name, s.status()))
            except StateError as exc:  # one damaged job does not hide the others
                damaged.append(exc)
                rows.append((s.path.name, {"state": "damaged", "phase": None, "error": str(exc)}))
        if as_json:
            for job_name, st in rows:
                print(json.dumps({"job": job_name, **st}, default=str))
        elif not rows:
            out.print(f"no jobs in {root}")
        for job_name, st in rows if not as_json else []:
            updated = time.strftime("%Y-%m-%d %H:%M", time.localtime(st.get("updated", 0)))
            out.print(
                f"{job_name:<24} {st.get('state', '?'):<12} {st.get('phase') or '-':<10} {updated}"
            )
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
    st = _guard(state.status)
    stamps: dict[str, dict[str, Any] | None] = _guard(lambda: {p: state.stamp(p) for p in PHASES})
    if as_json:
        print(json.dumps({"job": name, "status": st, "stamps": stamps}, default=str))
        return
    out.print(f"job {name}: {st.get('state')} (phase {st.get('phase') or '-'})")
    out.print(f"  from {spec.get('source')}; state {state.path}", highlight=False)
    for phase in PHASES:
        stamp = stamps[phase]
        when = time.strftime("%H:%M:%S", time.localtime(stamp["finished"])) if stamp else ""
        out.print(f"  {phase:<10} {'done ' + when if stamp else '-'}")
    if st.get("note"):
        out.print(f"  {st['note']}")
    if st.get("error"):
        out.print(f"  last error: {st['error']}", highlight=False, markup=False)


@app.command()
def logs(
    name: Annotated[str, typer.Argument(help="Job name.")],
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Keep printing.")] = False,
    state_dir: StateRoot = None,
) -> None:
    """Print the job's event log (JSON lines); -f follows it."""
    state = _guard(lambda: StateDir.for_job(name, state_dir or default_state_root()))
    if not state.events_file.is_file():
        err.print(f"error: no events for job {name!r} in {state.path}")
        raise typer.Exit(3)
    offset, number = 0, 1
    while True:
        lines, offset = _guard(functools.partial(state.event_lines, offset, number))
        number += len(lines)
        sys.stdout.write("".join(lines))
        sys.stdout.flush()
        if not follow:
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

"""The dashboard's web app (Starlette on uvicorn): JSON views of the job state folders, the
preview and the output video as files, and server-sent events (sse-starlette) for live updates.
It only reads the state; nothing here changes a job."""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from faceswap_oci.dashboard.data import EventLog, JobView, StateRoot, is_failure
from faceswap_oci.errors import FaceswapOciError
from faceswap_oci.state import default_cache_dir

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
STREAM_INTERVAL_S = 0.5


class BindRefused(FaceswapOciError):
    """The dashboard was asked to listen on an address other machines can reach."""

    exit_code = 2


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, *, allow_remote: bool) -> str | None:
    """Refuse a non-loopback address unless the user asked for it (``--host``); then return
    the warning to show."""
    if is_loopback(host):
        return None
    if not allow_remote:
        raise BindRefused(
            f"dashboard host {host!r} is not a loopback address; the dashboard has no login and "
            "shows the job's media, so it binds 127.0.0.1 unless you pass --host explicitly"
        )
    return (
        f"the dashboard listens on {host}, reachable from other machines, without a login; "
        "anyone who can reach it sees the jobs' previews and videos. Prefer the default "
        "127.0.0.1 with an SSH tunnel (ssh -L 8765:127.0.0.1:8765 ...)"
    )


def static_dir() -> Path:
    return Path(str(resources.files("faceswap_oci.dashboard") / "static"))


def _not_found(what: str) -> JSONResponse:
    return JSONResponse({"error": what}, status_code=404)


def create_app(state_root: Path, cache: Path | None = None) -> Starlette:
    """The app over ``state_root``; ``cache`` keeps parsed loss histories (default: the
    user's cache folder)."""
    root = StateRoot(
        state_root, cache if cache is not None else default_cache_dir() / "dashboard" / "losses"
    )
    static = static_dir()

    def view(request: Request) -> JobView | None:
        return root.job(str(request.path_params["name"]))

    async def index(request: Request) -> Response:
        return FileResponse(static / "index.html")

    async def job_page(request: Request) -> Response:
        return FileResponse(static / "job.html")

    async def jobs(request: Request) -> Response:
        return JSONResponse({"state_root": str(state_root), "jobs": root.summaries()})

    async def job(request: Request) -> Response:
        found = view(request)
        if found is None:
            return _not_found(f"no job {request.path_params['name']!r} in {state_root}")
        return JSONResponse(found.detail())

    async def losses(request: Request) -> Response:
        """The loss history: JSON, or typed arrays for the page (``losses.bin``)."""
        found = view(request)
        if found is None:
            return _not_found("no such job")
        data = await asyncio.to_thread(found.losses.losses)
        if request.url.path.endswith(".bin"):
            return Response(data.as_bytes(), media_type="application/octet-stream")
        return JSONResponse(data.as_json())

    async def preview(request: Request) -> Response:
        found = view(request)
        path = found.preview() if found else None
        if path is None:
            return _not_found("no preview yet")
        return FileResponse(path, media_type="image/png", headers={"Cache-Control": "no-store"})

    async def video(request: Request) -> Response:
        found = view(request)
        path = found.video() if found else None
        if path is None:
            return _not_found("no output video fetched yet")
        return FileResponse(path, media_type="video/mp4")

    async def stream(request: Request) -> Response:
        found = view(request)
        if found is None:
            return _not_found("no such job")
        return EventSourceResponse(_job_stream(request, found), ping=15)

    async def jobs_stream(request: Request) -> Response:
        return EventSourceResponse(_list_stream(request, root), ping=15)

    routes = [
        Route("/", index),
        Route("/job/{name}", job_page),
        Route("/api/jobs", jobs),
        Route("/api/stream", jobs_stream),
        Route("/api/jobs/{name}", job),
        Route("/api/jobs/{name}/losses", losses),
        Route("/api/jobs/{name}/losses.bin", losses),
        Route("/api/jobs/{name}/preview.png", preview),
        Route("/api/jobs/{name}/video.mp4", video),
        Route("/api/jobs/{name}/stream", stream),
        Mount("/static", StaticFiles(directory=static), name="static"),
    ]
    return Starlette(routes=routes)


async def _job_stream(request: Request, job: JobView) -> AsyncIterator[dict[str, Any]]:
    """Each event appended to the job's log, preview and video changes, and the summary."""
    log = EventLog(job.log.path)
    log.refresh()  # the page loaded everything up to now; stream what comes after
    preview_mtime = _mtime(job.preview())
    has_video = job.video() is not None
    last_summary: dict[str, Any] | None = None
    while not await request.is_disconnected():
        for event in log.refresh():
            payload = dict(event, failure=is_failure(event))
            yield {"event": "job_event", "data": json.dumps(payload, default=str)}
        mtime = _mtime(job.preview())
        if mtime != preview_mtime:
            preview_mtime = mtime
            yield {"event": "preview", "data": json.dumps({"mtime": mtime})}
        if not has_video and job.video() is not None:
            has_video = True
            yield {"event": "video", "data": json.dumps({"manifest": job.manifest()})}
        summary = job.summary()
        if summary != last_summary:
            last_summary = summary
            yield {"event": "summary", "data": json.dumps(summary, default=str)}
        await asyncio.sleep(STREAM_INTERVAL_S)


async def _list_stream(request: Request, root: StateRoot) -> AsyncIterator[dict[str, Any]]:
    last: list[dict[str, Any]] | None = None
    while not await request.is_disconnected():
        rows = root.summaries()
        if rows != last:
            last = rows
            yield {"event": "jobs", "data": json.dumps(rows, default=str)}
        await asyncio.sleep(STREAM_INTERVAL_S * 2)


def _mtime(path: Path | None) -> float | None:
    try:
        return path.stat().st_mtime if path else None
    except OSError:
        return None

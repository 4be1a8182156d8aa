"""`faceswap-oci dashboard`: a local web app over the job state folders (read only)."""

from __future__ import annotations

import socket
import webbrowser
from collections.abc import Callable
from pathlib import Path

from faceswap_oci.dashboard.server import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    BindRefused,
    check_bind,
    create_app,
)

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "BindRefused", "check_bind", "create_app", "serve"]


def serve(
    state_root: Path,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    allow_remote: bool = False,
    open_browser: bool = False,
    on_ready: Callable[[str], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> None:
    """Serve the dashboard until interrupted. A non-loopback ``host`` is refused unless
    ``allow_remote`` (the CLI's explicit ``--host``), and then warned about."""
    import uvicorn

    warning = check_bind(host, allow_remote=allow_remote)
    if warning and on_warning is not None:
        on_warning(warning)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise BindRefused(
            f"dashboard: cannot listen on {host}:{port} ({exc.strerror}); choose another --port"
        ) from None
    sock.listen(64)
    port = int(sock.getsockname()[1])
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    config = uvicorn.Config(
        create_app(state_root), log_level="warning", access_log=False, timeout_graceful_shutdown=1
    )
    if on_ready is not None:
        on_ready(url)
    if open_browser:
        webbrowser.open(url)
    uvicorn.Server(config).run(sockets=[sock])

"""The dashboard binds loopback only, unless --host is given; then it warns."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from faceswap_oci.dashboard import BindRefused, check_bind, serve
from tests.dashboard.conftest import start_dashboard, stop_dashboard


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_loopback_is_accepted_without_a_warning(host: str) -> None:
    assert check_bind(host, allow_remote=False) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.7", "dashboard.example"])
def test_other_addresses_are_refused_unless_asked_for(host: str) -> None:
    with pytest.raises(BindRefused) as refused:
        check_bind(host, allow_remote=False)
    assert str(refused.value) == (
        f"dashboard host {host!r} is not a loopback address; the dashboard has no login and "
        "shows the job's media, so it binds 127.0.0.1 unless you pass --host explicitly"
    )
    warning = check_bind(host, allow_remote=True)
    assert warning is not None and warning.startswith(f"the dashboard listens on {host}, reachable")


def test_serve_refuses_before_listening(tmp_path: Path) -> None:
    with pytest.raises(BindRefused):
        serve(tmp_path, host="0.0.0.0", port=0)


def test_the_cli_binds_loopback_by_default(tmp_path: Path) -> None:
    dashboard = start_dashboard(tmp_path, "--port", "0", stderr=tmp_path / "err")
    try:
        assert dashboard.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(dashboard.url + "api/jobs") as response:
            assert json.load(response) == {"state_root": str(tmp_path), "jobs": []}
    finally:
        stop_dashboard(dashboard)
    assert "warning" not in (tmp_path / "err").read_text()


def test_the_cli_warns_with_an_explicit_host(tmp_path: Path) -> None:
    dashboard = start_dashboard(tmp_path, "--host", "0.0.0.0", "--port", "0", stderr=tmp_path / "e")
    try:
        assert dashboard.url.startswith("http://0.0.0.0:")
        port = dashboard.url.rsplit(":", 1)[1].strip("/")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/jobs") as response:
            assert response.status == 200
    finally:
        stop_dashboard(dashboard)
    assert "warning: the dashboard listens on 0.0.0.0, reachable from other machines" in " ".join(
        (tmp_path / "e").read_text().split()
    )

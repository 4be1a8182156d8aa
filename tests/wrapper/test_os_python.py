"""`setup` on a host shaped like the default OCI image where Python is concerned.

Oracle Linux 9's `/usr/bin/python3` is 3.9 and the supported Python sits beside it. The host
here is a booted Debian 12 test host whose `/usr/bin/python3` is a real CPython 3.9
(tests/testbed/variants.py) with Debian's python3.11 beside it. Before host_prepare reported its
interpreter, the faceswap role made the venv with `/usr/bin/python3` and this setup failed on
the supported-Python check; now it must install a working Faceswap on python3.11, with no
`faceswap_python` anywhere in the job.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import faceswap_oci
from faceswap_oci import cache
from faceswap_oci import events as ev
from faceswap_oci.spec import DEFAULT_FACESWAP_REF
from tests.faceswap.playbook import ROLE_PLAY, run_playbook
from tests.testbed.variants import old_system_python

pytestmark = [pytest.mark.testbed, pytest.mark.faceswap, pytest.mark.slow]


def test_setup_uses_the_python_beside_an_old_python3(
    xdg: Path,
    job_file: Callable[..., Path],
    testbed_hosts: Callable[[int], list[Any]],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    host = testbed_hosts(1)[0]
    assert old_system_python(host, "3.9").startswith("3.9.")
    job = faceswap_oci.load_job(job_file("oldpy", host.job_target()))
    seen: list[ev.Event] = []
    result = faceswap_oci.run(job, on_event=seen.append, only="setup")
    assert result.ok, result.error

    reports = {e.report: e.data for e in seen if isinstance(e, ev.Report)}
    assert reports["faceswap_python"]["python"] == "/usr/bin/python3.11"
    ready = reports["faceswap_ready"]
    assert (ready["python"], ready["smoke_checked"]) == ("3.11", True)

    on_host = host.ssh(
        "readlink -f /opt/faceswap-oci/venv/bin/python; /usr/bin/python3 -c "
        "'import sys; print(sys.version_info[:2])'; "
        "cd /opt/faceswap-oci/faceswap && runuser -u faceswap -- env $(cat ../faceswap.env "
        "| grep -v '^#' | xargs) ../venv/bin/python faceswap.py -h </dev/null | grep -m1 '^usage:'"
    ).stdout.splitlines()
    assert on_host[0] == "/usr/bin/python3.11"
    assert on_host[1] == "(3, 9)"  # the host's own python3 is left alone
    assert on_host[2].startswith("usage: faceswap.py")

    # The faceswap role on its own, in check mode, Ansible itself on the host's 3.9: unset, it
    # picks python3.11 beside the old python3; today's default before this change,
    # faceswap_python=/usr/bin/python3, is refused naming the version.
    base = host.host_vars()
    assert base["ansible_python_interpreter"] == "/usr/bin/python3"
    role = run_playbook(
        ROLE_PLAY,
        {
            "all": {
                "hosts": {
                    "unset": base,
                    "old_default": base | {"faceswap_python": "/usr/bin/python3"},
                }
            }
        },
        tmp_path_factory.mktemp("role"),
        extra_vars={
            "faceswap_commit": cache.resolve_ref(DEFAULT_FACESWAP_REF),
            "faceswap_ini_dir": "/opt/faceswap-oci/jobs/oldpy/config",
        },
        check=True,
    )
    assert role.failures == [
        "faceswap_python '/usr/bin/python3' is Python 3.9; Faceswap needs Python 3.11, 3.12, "
        "3.13: point faceswap_python at one (e.g. /usr/bin/python3.12)."
    ]
    # The faceswap_python event, as the YAML result format (ansible.cfg) prints it.
    assert "chosen: newest supported on the host" in role.output
    assert "python: /usr/bin/python3.11" in role.output

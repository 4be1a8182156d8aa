#!/usr/bin/python
# Copyright: faceswap-oci developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: python_info
short_description: Find the newest Python on the host that can run Faceswap
version_added: "0.1.0"
description:
  - Looks for the interpreters O(names) on the host's C(PATH) (or checks the O(paths) given),
    runs each once to read its version and whether it can import O(modules), and picks the
    newest one whose version is in O(supported) and that lacks none of the modules.
  - The host's own C(/usr/bin/python3) is often older than Faceswap accepts (3.9 on Oracle
    Linux 9, 3.10 on Ubuntu 22.04) while a newer C(python3.1x) sits beside it; the versioned
    names find that one.
  - Never changes the host. When no interpreter qualifies, RV(python) is null and
    RV(interpreters) says what each candidate lacks, so the caller can fail with its own
    message.
author:
  - faceswap-oci developers (@faceswap-oci)
options:
  names:
    description: Interpreter names looked up on C(PATH), newest first.
    type: list
    elements: str
    default: [python3.13, python3.12, python3.11]
  paths:
    description:
      - Interpreters to check instead of looking up O(names) (absolute paths or names).
        The first that qualifies is picked.
    type: list
    elements: str
    default: []
  supported:
    description: The C(major.minor) versions that qualify.
    type: list
    elements: str
    default: ["3.11", "3.12", "3.13"]
  modules:
    description: Modules a qualifying interpreter must be able to import.
    type: list
    elements: str
    default: [venv, ensurepip, tkinter]
extends_documentation_fragment: [faceswap_oci.core.attributes.READ_ONLY]
"""

EXAMPLES = r"""
- name: Find the Python that makes Faceswap's venv
  faceswap_oci.core.python_info:
  register: found

- name: Check a given interpreter
  faceswap_oci.core.python_info:
    paths: [/usr/bin/python3.12]
"""

RETURN = r"""
python:
  description: Path of the chosen interpreter; null when none qualifies.
  returned: always
  type: str
  sample: /usr/bin/python3.12
python_version:
  description: C(major.minor) of RV(python); null when none qualifies.
  returned: always
  type: str
  sample: "3.12"
interpreters:
  description:
    - Every candidate found, in the order checked, with its version (null when it did not
      run), the modules it lacks, and why it does not qualify (null when it does).
  returned: always
  type: list
  elements: dict
  sample:
    - {path: /usr/bin/python3.11, version: "3.11", missing: [], problem: null}
"""

import json  # noqa: E402
import os  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

# Run by each candidate: its version and the modules it cannot find. Python 3.6+ syntax, so
# that an old interpreter still answers and the caller can say why it does not qualify.
CHECK = (
    "import importlib.util, json, sys\n"
    "mods = json.loads(sys.argv[1])\n"
    "print(json.dumps({'version': '%d.%d' % sys.version_info[:2],\n"
    "  'missing': [m for m in mods if importlib.util.find_spec(m) is None]}))\n"
)


def check_interpreter(
    path: str,
    supported: Sequence[str],
    modules: Sequence[str],
    run: Callable[[list[str]], tuple[int, str, str]],
) -> dict[str, Any]:
    """One candidate: version, missing modules, and the reason it does not qualify."""
    rc, out, err = run([path, "-c", CHECK, json.dumps(list(modules))])
    try:
        answer = json.loads(out.strip().splitlines()[-1]) if rc == 0 else None
    except (ValueError, IndexError):
        answer = None
    if not isinstance(answer, dict):
        first = (err or out).strip().splitlines()
        return {
            "path": path,
            "version": None,
            "missing": [],
            "problem": f"does not run ({first[-1] if first else f'exit code {rc}'})",
        }
    version, missing = str(answer["version"]), list(answer["missing"])
    problem = None
    if version not in supported:
        problem = f"is Python {version}, not {', '.join(supported)}"
    elif missing:
        problem = f"cannot import {', '.join(missing)}"
    return {"path": path, "version": version, "missing": missing, "problem": problem}


def find_python(
    names: Sequence[str],
    paths: Sequence[str],
    supported: Sequence[str],
    modules: Sequence[str],
    which: Callable[[str], str | None],
    run: Callable[[list[str]], tuple[int, str, str]],
    realpath: Callable[[str], str] = os.path.realpath,
) -> dict[str, Any]:
    """Check the candidates in order; the first that qualifies is the answer."""
    candidates: list[str] = []
    for name in paths or names:
        found = name if os.path.isabs(name) else which(name)
        if found and realpath(found) not in {realpath(c) for c in candidates}:
            candidates.append(found)
    interpreters = [check_interpreter(p, supported, modules, run) for p in candidates]
    chosen = next((i for i in interpreters if i["problem"] is None), None)
    return {
        "python": chosen["path"] if chosen else None,
        "python_version": chosen["version"] if chosen else None,
        "interpreters": interpreters,
    }


def run_module() -> None:
    module = AnsibleModule(
        argument_spec={
            "names": {
                "type": "list",
                "elements": "str",
                "default": ["python3.13", "python3.12", "python3.11"],
            },
            "paths": {"type": "list", "elements": "str", "default": []},
            "supported": {"type": "list", "elements": "str", "default": ["3.11", "3.12", "3.13"]},
            "modules": {
                "type": "list",
                "elements": "str",
                "default": ["venv", "ensurepip", "tkinter"],
            },
        },
        supports_check_mode=True,
    )
    p = module.params

    def run(argv: list[str]) -> tuple[int, str, str]:
        try:
            rc, out, err = module.run_command(argv)
        except OSError as exc:  # not executable, or gone
            return 126, "", str(exc)
        return rc, out, err

    def which(name: str) -> str | None:
        found: str | None = module.get_bin_path(name, required=False, opt_dirs=["/usr/local/bin"])
        return found

    result = find_python(p["names"], p["paths"], p["supported"], p["modules"], which, run)
    module.exit_json(changed=False, **result)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()

"""Where the Ansible content (playbooks, roles, plugins) is, and the pure helpers of its
``module_utils`` that the wrapper shares with the modules (one function, both sides)."""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

from faceswap_oci.errors import StateError


def content_root() -> Path:
    """The collection root: inside the installed package, or the checkout."""
    packaged = Path(__file__).resolve().parent / "ansible_collections" / "faceswap_oci" / "core"
    if (packaged / "playbooks").is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "galaxy.yml").is_file() and (checkout / "playbooks").is_dir():
        return checkout
    raise StateError(
        "cannot find the Ansible content (playbooks, roles, plugins) of faceswap-oci; "
        "reinstall the package (pip install faceswap-oci) or run from a checkout"
    )


@cache
def module_util(name: str) -> ModuleType:
    """``plugins/module_utils/<name>.py`` loaded by path (those helpers import only the
    standard library, so the wrapper needs no ``ansible_collections`` on its path)."""
    path = content_root() / "plugins" / "module_utils" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_fsoci_module_utils_{name}", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise StateError(f"{path} is missing from the installation; reinstall faceswap-oci")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module

"""Faceswap's source at the pinned commit, read from the controller's source cache (a cache
without the commit fails with the fix, as tests/hostimage.py's pinned_commit does)."""

from __future__ import annotations

import ast
import subprocess
from functools import cache
from typing import Any

from faceswap_oci import cache as fs_cache
from faceswap_oci.spec import DEFAULT_FACESWAP_REF


def _git(*args: str) -> str:
    commit = fs_cache.resolve_ref(DEFAULT_FACESWAP_REF)
    argv = ["git", "-C", str(fs_cache.source_dir()), *(a.format(commit=commit) for a in args)]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


@cache
def faceswap_file(path: str) -> str:
    """A file of Faceswap's tree, e.g. ``lib/cli/args_train.py``."""
    return _git("show", f"{{commit}}:{path}")


@cache
def faceswap_plugins(folder: str) -> list[str]:
    """Plugin names as Faceswap's PluginLoader lists them (plugins/plugin_loader.py:
    get_available_models / get_available_convert_plugins: *.py, not _*, not *defaults.py,
    '_' -> '-')."""
    names = _git("ls-tree", "--name-only", f"{{commit}}:{folder}").split()
    return sorted(
        n[:-3].replace("_", "-")
        for n in names
        if n.endswith(".py") and not n.startswith("_") and not n.endswith("defaults.py")
    )


def faceswap_options(args_file: str, cls: str | None = None) -> list[dict[str, Any]]:
    """The ``argument_list.append({...})`` options of ``lib/cli/<args_file>`` (of class *cls*
    alone when given): their literal keys; an action that is a class is kept by its name."""
    tree: ast.AST = ast.parse(faceswap_file(f"lib/cli/{args_file}"))
    if cls is not None:
        tree = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == cls)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Dict):
            continue
        keys = [k.value if isinstance(k, ast.Constant) else None for k in node.keys]
        if "opts" not in keys:
            continue
        option: dict[str, Any] = {}
        for key, value in zip(keys, node.values, strict=True):
            try:
                option[str(key)] = ast.literal_eval(value)
            except ValueError:
                if isinstance(value, ast.Name):
                    option[str(key)] = value.id
        found.append(option)
    return found

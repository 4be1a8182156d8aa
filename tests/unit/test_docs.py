"""The docs keep up with the code: every spec field is documented, README's commands exist."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from faceswap_oci import spec

ROOT = Path(__file__).resolve().parents[2]


def leaf_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    paths = []
    for name, field in model.model_fields.items():
        sub = spec._model_of(field.annotation)
        paths.append(prefix + name)
        if sub is not None:
            paths.extend(leaf_paths(sub, f"{prefix}{name}."))
    return paths


def test_every_spec_field_is_in_job_spec_doc() -> None:
    doc = (ROOT / "docs/job-spec.md").read_text()
    missing = [p for p in leaf_paths(spec.JobSpec) if f"`{p}`" not in doc]
    assert missing == []


def test_consent_text_in_docs_is_the_one_the_spec_requires() -> None:
    doc = (ROOT / "docs/job-spec.md").read_text()
    quoted = " ".join(line.lstrip("> ") for line in doc.splitlines() if line.startswith(">"))
    assert " ".join(quoted.split()) == spec.CONSENT_TEXT


def test_readme_commands_point_at_real_files() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    assert blocks[0].strip() == (
        "python3 -m venv .venv && .venv/bin/pip install . && "
        ".venv/bin/faceswap-oci run examples/local-cpu.yml"
    )
    assert blocks[1].strip() == "bash scripts/test.sh"
    assert (ROOT / "examples/local-cpu.yml").is_file()
    assert (ROOT / "scripts/test.sh").is_file()
    ci = (ROOT / ".ci/run").read_text()
    assert "bash scripts/test.sh" in ci


def test_every_test_the_survival_tables_name_exists() -> None:
    """docs/durability.md's and docs/detach.md's "shown by" cells name test files and tests
    (`tests/x.py::test_a`, then `::test_b` for another test of the same file): each exists."""
    missing = []
    for doc in ("docs/durability.md", "docs/detach.md"):
        current: Path | None = None
        for path, name in re.findall(
            r"`(tests/[\w/]+\.py)?(?:::(\w+))?`", (ROOT / doc).read_text()
        ):
            if path:
                current = ROOT / path
                if not current.is_file():
                    missing.append(f"{doc}: {path}")
                    continue
            if name and (current is None or f"def {name}(" not in current.read_text()):
                missing.append(f"{doc}: {current}::{name}")
    assert missing == []

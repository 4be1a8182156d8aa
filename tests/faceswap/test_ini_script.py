"""The role's ini renderer (roles/faceswap/files/fsoci_ini.py) on Faceswap-shaped ini files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "roles/faceswap/files/fsoci_ini.py"

TRAIN = """\
[global]
# Use mixed precision. Choose from: True, False
# [Default: False]

mixed_precision = False
learning_rate = 5e-05

[model.original]
# ORIGINAL FACESWAP MODEL.

# Lower memory mode. Set to 'True' if having issues with VRAM useage.
lowmem = False
"""
EXTRACT = "[global]\n# Comment with = sign\nallow_growth = False\n"
CONVERT = "[writer.ffmpeg]\ncontainer = mp4\ncrf = 23\n"


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    defaults = tmp_path / "faceswap-config"
    defaults.mkdir()
    (defaults / "train.ini").write_text(TRAIN)
    (defaults / "extract.ini").write_text(EXTRACT)
    (defaults / "convert.ini").write_text(CONVERT)
    out = tmp_path / "job-config"
    out.mkdir()
    return defaults, out


def render(
    defaults: Path, out: Path, settings: dict[str, object], *extra: str
) -> tuple[int, dict[str, object]]:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(defaults), str(out), json.dumps(settings), *extra],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode, json.loads(done.stdout)


def test_values_replace_defaults_and_keep_comments(dirs: tuple[Path, Path]) -> None:
    defaults, out = dirs
    settings = {"train": {"model.original": {"lowmem": True}, "global": {"learning_rate": 1e-4}}}
    rc, result = render(defaults, out, settings)
    assert rc == 0
    assert result["changed"] is True
    text = (out / "train.ini").read_text()
    assert "lowmem = True" in text
    assert "learning_rate = 0.0001" in text
    assert "mixed_precision = False" in text
    assert "# Lower memory mode. Set to 'True' if having issues with VRAM useage." in text
    assert (out / "extract.ini").read_text() == EXTRACT
    assert (out / "convert.ini").read_text() == CONVERT


def test_second_run_is_unchanged_even_after_faceswap_rewrites(dirs: tuple[Path, Path]) -> None:
    defaults, out = dirs
    settings = {"train": {"global": {"learning_rate": 1e-4}}, "convert": {"writer.ffmpeg": {}}}
    assert render(defaults, out, settings)[1]["changed"] is True
    # Faceswap writes numbers its own way and reflows comments: same values, other text.
    train = out / "train.ini"
    train.write_text(train.read_text().replace("0.0001", "1e-04").replace("# ORIGINAL", "#ORIG"))
    rc, result = render(defaults, out, settings)
    assert (rc, result) == (0, {"changed": False, "files": []})


def test_changed_value_and_removed_setting_are_changes(dirs: tuple[Path, Path]) -> None:
    defaults, out = dirs
    render(defaults, out, {"convert": {"writer.ffmpeg": {"crf": 18}}})
    rc, result = render(defaults, out, {})
    assert rc == 0
    assert result == {"changed": True, "files": [str(out / "convert.ini")]}
    assert "crf = 23" in (out / "convert.ini").read_text()


def test_check_mode_writes_nothing(dirs: tuple[Path, Path]) -> None:
    defaults, out = dirs
    rc, result = render(defaults, out, {"train": {"global": {"mixed_precision": True}}}, "--check")
    assert rc == 0
    assert result["changed"] is True
    assert not any(out.iterdir())


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        (
            {"train": {"model.nope": {"lowmem": True}}},
            "train.ini has no section [model.nope]; valid sections: global, model.original",
        ),
        (
            {"train": {"model.original": {"lowmemory": True}}},
            "train.ini [model.original] has no option 'lowmemory'; valid options: lowmem",
        ),
        (
            {"convert": {"writer.ffmpeg": {"codec": "libx265"}}},
            "convert.ini [writer.ffmpeg] has no option 'codec'; valid options: container, crf",
        ),
    ],
)
def test_unknown_settings_are_rejected_by_name(
    dirs: tuple[Path, Path], settings: dict[str, object], problem: str
) -> None:
    defaults, out = dirs
    rc, result = render(defaults, out, settings)
    assert rc == 1
    assert result["msg"] == f"faceswap_ini: {problem}"
    assert not any(out.iterdir())


def test_unknown_file_is_rejected(dirs: tuple[Path, Path]) -> None:
    defaults, out = dirs
    rc, result = render(defaults, out, {"gui": {}})
    assert rc == 1
    assert result["msg"] == "unknown ini file(s) ['gui']; use ('extract', 'train', 'convert')"

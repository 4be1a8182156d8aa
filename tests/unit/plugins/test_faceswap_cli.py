"""The one builder of Faceswap's command lines, checked against Faceswap's own argument lists
(``lib/cli/args.py``, ``args_extract_convert.py``, ``args_train.py``) at the pinned commit."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
import yaml
from ansible_collections.faceswap_oci.core.plugins.filter.faceswap_argv import faceswap_argv
from ansible_collections.faceswap_oci.core.plugins.filter.faceswap_env import faceswap_env
from ansible_collections.faceswap_oci.core.plugins.module_utils import faceswap_cli as cli

from tests.unit.plugins.pinned_faceswap import faceswap_options

ROOT = Path(__file__).resolve().parents[3]
# the classes whose options each command takes (lib/cli/args*.py: ExtractArgs(ExtractConvertArgs
# (FaceSwapArgs)), ConvertArgs(ExtractConvertArgs), TrainArgs(FaceSwapArgs))
CLASSES = {
    "extract": [("args.py", "FaceSwapArgs"), ("args_extract_convert.py", "ExtractConvertArgs"),
                ("args_extract_convert.py", "ExtractArgs")],
    "convert": [("args.py", "FaceSwapArgs"), ("args_extract_convert.py", "ExtractConvertArgs"),
                ("args_extract_convert.py", "ConvertArgs")],
    "train": [("args.py", "FaceSwapArgs"), ("args_train.py", "TrainArgs")],
}  # fmt: skip


@cache
def flags(command: str) -> dict[str, bool]:
    """Short flag -> whether it takes values (False: store_true)."""
    found: dict[str, bool] = {}
    for name, cls in CLASSES[command]:
        for option in faceswap_options(name, cls):
            takes = option.get("action") != "store_true"
            found.update(dict.fromkeys(option["opts"], takes))
    return found


def check_against_faceswap(command: str, argv: list[str], values: set[str]) -> None:
    """Every flag is one of Faceswap's for the command, and takes values exactly when it does
    (``values``: the argv's non-flag tokens that are values)."""
    assert argv[2] == command
    known = flags(command)
    tokens = argv[3:]
    for index, token in enumerate(tokens):
        if token in values or not token.startswith("-"):
            continue
        assert token in known, f"faceswap.py {command} has no {token}"
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        has_value = following is not None and following in values
        assert has_value == known[token], (
            f"{token}: value given {has_value}, Faceswap wants {known[token]}"
        )


def test_extract_command_line() -> None:
    argv = cli.extract_argv(
        "/r/venv/bin/python", "/r/faceswap/faceswap.py", input="/j/in/a.mp4", output="/j/faces_a",
        detector="s3fd", aligner="fan", masker=["vgg-clear", "unet-dfl"], size=512, every_n=2,
        log="/j/logs/extract_a.log",
    )  # fmt: skip
    assert argv == [
        "/r/venv/bin/python", "/r/faceswap/faceswap.py", "extract", "-i", "/j/in/a.mp4",
        "-o", "/j/faces_a", "-D", "s3fd", "-A", "fan", "-M", "vgg-clear", "unet-dfl",
        "-z", "512", "-N", "2", "-s", "-e", "-F", "/j/logs/extract_a.log",
    ]  # fmt: skip
    values = {"/j/in/a.mp4", "/j/faces_a", "s3fd", "fan", "vgg-clear", "unet-dfl", "512", "2",
              "/j/logs/extract_a.log"}  # fmt: skip
    check_against_faceswap("extract", argv, values)


def test_convert_command_line() -> None:
    argv = cli.convert_argv(
        "py", "fs.py", input="/j/a.mp4", output="/j/out", model_dir="/j/model", writer="ffmpeg",
        ini="/j/c.ini", log="/j/c.log", color="avg-color", mask_type="extended", extra=["-P"],
    )  # fmt: skip
    assert argv == [
        "py", "fs.py", "convert", "-i", "/j/a.mp4", "-o", "/j/out", "-m", "/j/model",
        "-w", "ffmpeg", "-C", "/j/c.ini", "-F", "/j/c.log", "-c", "avg-color", "-M", "extended",
        "-P",
    ]  # fmt: skip
    values = {"/j/a.mp4", "/j/out", "/j/model", "ffmpeg", "/j/c.ini", "/j/c.log", "avg-color",
              "extended"}  # fmt: skip
    check_against_faceswap("convert", argv, values)
    plain = cli.convert_argv("py", "fs.py", input="i", output="o", model_dir="m", writer="ffmpeg",
                             ini="c", log="l")  # fmt: skip
    assert "-c" not in plain and "-M" not in plain


def test_train_command_line() -> None:
    argv = cli.train_argv(
        "py", "fs.py", faces_a="/j/fa", faces_b="/j/fb", model_dir="/j/m", trainer="original",
        batch_size=16, save_every=250, log="/j/t.log", ini="/j/t.ini", iterations=40,
        preview=True, exclude_gpus=[1, 3], distributed=True,
    )  # fmt: skip
    assert argv == [
        "py", "fs.py", "train", "-A", "/j/fa", "-B", "/j/fb", "-m", "/j/m", "-t", "original",
        "-b", "16", "-s", "250", "-F", "/j/t.log", "-C", "/j/t.ini", "-i", "40", "-w",
        "-X", "1", "3", "-d",
    ]  # fmt: skip
    values = {"/j/fa", "/j/fb", "/j/m", "original", "16", "250", "/j/t.log", "/j/t.ini", "40",
              "1", "3"}  # fmt: skip
    check_against_faceswap("train", argv, values)
    bare = cli.train_argv("py", "fs.py", faces_a="a", faces_b="b", model_dir="m", trainer="t",
                          batch_size=1, save_every=1, log="l")  # fmt: skip
    assert bare[-2:] == ["-F", "l"]


def test_the_filter_refuses_what_the_builder_does_not_take() -> None:
    with pytest.raises(Exception, match=r"faceswap_argv\('extract'\).*'sise'"):
        faceswap_argv({"python": "p", "script": "s", "sise": 512}, "extract")
    with pytest.raises(Exception, match=r"'python' is required"):
        faceswap_argv({}, "train")


def _yaml_strings(node: object) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _yaml_strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _yaml_strings(v)]
    return [node] if isinstance(node, str) else []


def test_no_role_writes_a_faceswap_command_line_of_its_own() -> None:
    """Faceswap's flags appear in the builder alone: a role that lists 'faceswap.py' and
    its command in Jinja would be a second builder."""
    offending = []
    for path in sorted((ROOT / "roles").glob("*/tasks/*.yml")):
        for text in _yaml_strings(yaml.safe_load(path.read_text())):
            for command in ("'extract'", "'convert'", "'train'"):
                if command in text and "_script" in text and "faceswap_argv" not in text:
                    offending.append(f"{path.relative_to(ROOT)}: {text[:80]}")
    assert offending == []


def test_faceswap_env_on_cpu_waits_passively_and_extra_wins() -> None:
    assert faceswap_env("cpu") == {
        "KERAS_BACKEND": "torch",
        "PYTHONUNBUFFERED": "1",
        "FACESWAP_BACKEND": "cpu",
        "OMP_WAIT_POLICY": "PASSIVE",
    }
    # a GPU backend keeps OpenMP's own policy; an empty backend lets Faceswap's config decide
    assert faceswap_env("nvidia") == {
        "KERAS_BACKEND": "torch",
        "PYTHONUNBUFFERED": "1",
        "FACESWAP_BACKEND": "nvidia",
    }
    assert "FACESWAP_BACKEND" not in faceswap_env("")
    assert "OMP_WAIT_POLICY" not in faceswap_env("")
    # the role's *_env option is set over the defaults (a user may want the spinning back)
    mine = faceswap_env("cpu", {"OMP_WAIT_POLICY": "ACTIVE", "TMPDIR": "/job/tmp", "N": 2})
    assert mine["OMP_WAIT_POLICY"] == "ACTIVE" and mine["TMPDIR"] == "/job/tmp"
    assert mine["N"] == "2"
    with pytest.raises(Exception, match="extra environment must be a mapping"):
        faceswap_env("cpu", ["OMP_WAIT_POLICY=ACTIVE"])
    with pytest.raises(Exception, match="backend must be a string"):
        faceswap_env(None)


def test_every_phase_role_takes_faceswap_s_environment_from_the_builder() -> None:
    """extract, train and convert build the Faceswap process's environment with the one
    filter, from their backend and *_env options (no role writes its own dict)."""
    for phase in ("extract", "train", "convert"):
        text = (ROOT / f"roles/faceswap_{phase}/vars/main.yml").read_text()
        want = f"faceswap_{phase}_backend | faceswap_oci.core.faceswap_env(faceswap_{phase}_env)"
        assert want in text, phase
        assert "KERAS_BACKEND" not in text, phase

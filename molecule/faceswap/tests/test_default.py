"""Verify the faceswap scenario: Faceswap at the pinned commit, owned and runnable by its user."""

from __future__ import annotations

import configparser
import json
import os

import pytest

from faceswap_oci import cache

ROOT = "/opt/faceswap-oci"
USER = "faceswap"
AS_USER = f"runuser -u {USER} -- env -C {ROOT}/faceswap"
ENV = f"set -a; . {ROOT}/faceswap.env; set +a;"


@pytest.fixture(scope="module")
def commit() -> str:
    return cache.resolve_ref(os.environ.get("FSOCI_FACESWAP_REF") or "master")


def test_user_exists_without_login(host):
    user = host.user(USER)
    assert user.exists
    assert user.uid < 1000
    assert user.shell == "/usr/sbin/nologin"


def test_user_owns_the_whole_install(host):
    for path in ("", "/faceswap", "/venv", "/config", "/faceswap.env"):
        assert host.file(ROOT + path).user == USER
    strays = host.check_output(
        f"find {ROOT}/faceswap {ROOT}/venv {ROOT}/config ! -user {USER} -print -quit"
    )
    assert strays == ""


def test_tree_is_the_pinned_commit(host, commit):
    assert host.file(f"{ROOT}/faceswap/.fsoci-commit").content_string.strip() == commit
    assert host.file(f"{ROOT}/faceswap/faceswap.py").is_file
    assert not host.file(f"{ROOT}/.faceswap-staging").exists


def test_headless_configuration(host):
    backend = json.loads(host.file(f"{ROOT}/faceswap/config/.faceswap").content_string)
    assert backend == {"backend": "cpu"}
    env = host.file(f"{ROOT}/faceswap.env").content_string.splitlines()
    assert "KERAS_BACKEND=torch" in env
    assert "FACESWAP_BACKEND=cpu" in env


def test_venv_imports_torch_and_keras_as_the_user(host):
    probe = (
        "import json, torch, keras; print(json.dumps([torch.__version__, "
        "keras.backend.backend(), torch.cuda.is_available()]))"
    )
    out = host.check_output(
        f"{AS_USER} sh -c '{ENV} {ROOT}/venv/bin/python -c \"{probe}\" </dev/null'"
    )
    torch_version, keras_backend, cuda = json.loads(out.splitlines()[-1])
    assert torch_version.startswith("2.12.1")
    assert keras_backend == "torch"
    assert cuda is False


def test_faceswap_help_exits_zero_as_the_user(host):
    result = host.run(f"{AS_USER} sh -c '{ENV} {ROOT}/venv/bin/python faceswap.py -h </dev/null'")
    assert result.rc == 0, result.stderr
    assert "extract" in result.stdout
    assert "train" in result.stdout


def test_requirements_come_from_the_shipped_wheel_set(host):
    log = host.file(f"{ROOT}/logs/pip-install.log").content_string
    assert f"{ROOT}/wheels/" in log or "Looking in links" in log
    assert "Successfully installed" in log
    assert host.file(f"{ROOT}/venv/.fsoci-requirements").exists


def read_ini(host, name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(allow_no_value=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(host.file(f"{ROOT}/config/{name}.ini").content_string)
    return parser


def test_ini_files_carry_the_given_values(host):
    train = read_ini(host, "train")
    assert train["model.original"]["lowmem"] == "True"
    assert train["global"]["mixed_precision"] == "False"
    assert read_ini(host, "convert")["writer.ffmpeg"]["crf"] == "18"


def test_ini_files_keep_faceswap_defaults_elsewhere(host):
    train = read_ini(host, "train")
    assert train["model.villain"]["lowmem"] == "False"
    assert set(train.sections()) >= {"global", "global.loss", "global.optimizer", "trainer.loader"}
    assert read_ini(host, "extract").sections()

# Copyright: faceswap-oci developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of an OCI SDK config file before the first API call.

Pure functions returning a list of problems, each naming the file and field and how to fix it.
Used by the modules and by the Python wrapper (``faceswap-oci plan``). No message contains a
secret: neither the key, the fingerprint nor a pass phrase is ever echoed.
"""

from __future__ import annotations

import configparser
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

OCID_RE: Final = re.compile(r"^ocid1\.[a-z0-9_]+\.[a-z0-9_-]*\.[a-z0-9_-]*\.[a-z0-9]+$")
FINGERPRINT_RE: Final = re.compile(r"^([0-9a-f]{2}:){15}[0-9a-f]{2}$")
REQUIRED_KEYS: Final = ("user", "fingerprint", "tenancy", "region", "key_file")


@dataclass(frozen=True)
class Problem:
    file: str
    field: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.problem}; fix: {self.fix}"


def known_regions() -> frozenset[str]:
    """Region identifiers and short names the installed SDK knows."""
    try:
        from oci import regions
    except ImportError:  # pragma: no cover - oci is a dependency
        return frozenset()
    return frozenset(regions.REGIONS) | frozenset(regions.REGIONS_SHORT_NAMES)


def check_ocid(value: str | None, field: str, file: str, kind: str | None = None) -> list[Problem]:
    """``value`` looks like an OCID (of ``kind``, e.g. ``compartment``)."""
    if not value or not OCID_RE.match(value):
        return [
            Problem(
                file,
                field,
                "is not a valid OCID (expected ocid1.<type>.oc1..<unique id>)",
                "copy the OCID from the OCI console (Identity > Compartments, or the "
                "resource page)",
            )
        ]
    if kind is not None and value.split(".")[1] not in (
        kind,
        "tenancy" if kind == "compartment" else kind,
    ):
        return [
            Problem(
                file,
                field,
                f"is an OCID of a {value.split('.')[1]}, not of a {kind}",
                f"use the OCID of a {kind}",
            )
        ]
    return []


def check_region(
    region: str | None, field: str, file: str, regions: frozenset[str] | None = None
) -> list[Problem]:
    known = known_regions() if regions is None else regions
    if not region:
        return [Problem(file, field, "is missing", "set region, e.g. region=eu-frankfurt-1")]
    if known and region not in known:
        close = sorted(r for r in known if r.split("-")[0] == region.split("-")[0])[:5]
        hint = f"one of {close}" if close else "a region id such as eu-frankfurt-1"
        return [Problem(file, field, f"unknown region {region!r}", f"use {hint}")]
    return []


def check_key_file(path: str, file: str, field: str = "key_file") -> list[Problem]:
    key = Path(os.path.expanduser(path))
    if not key.is_file():
        return [
            Problem(
                file,
                field,
                f"key file {key} does not exist",
                "point key_file at your API signing key (oci setup keys) or copy it there",
            )
        ]
    mode = stat.S_IMODE(key.stat().st_mode)
    if mode & 0o077:
        return [
            Problem(
                file,
                field,
                f"key file {key} is readable by others (mode {mode:o})",
                f"chmod 600 {key}",
            )
        ]
    return []


def check_oci_config(
    config_file: str,
    profile: str = "DEFAULT",
    *,
    region: str | None = None,
    compartment: str | None = None,
    regions: frozenset[str] | None = None,
    auth_type: str = "api_key",
) -> list[Problem]:
    """Every problem of ``profile`` in ``config_file`` (and of the job's region/compartment).

    ``region`` overrides the profile's region, as the modules' ``region`` option does.
    ``auth_type`` is how the clients will be built (``oci_common.make_signer``): ``api_key``
    needs user and fingerprint; ``security_token`` needs ``security_token_file`` instead (the
    SDK refuses a token profile without the token signer: ``InvalidConfig``).
    """
    path = Path(os.path.expanduser(config_file))
    name = str(path)
    problems: list[Problem] = []
    if compartment is not None:
        problems += check_ocid(compartment, "target.oci.compartment", "job spec", "compartment")
    if not path.is_file():
        return [
            Problem(
                name,
                "(file)",
                "OCI config file does not exist",
                "run `oci setup config`, or set target.oci.config_file to your config file",
            ),
            *problems,
        ]
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path)
    except configparser.Error as exc:
        return [
            Problem(name, "(file)", f"cannot be parsed: {exc.message}", "fix the INI syntax"),
            *problems,
        ]
    if profile != "DEFAULT" and not parser.has_section(profile):
        sections = ["DEFAULT"] if parser.defaults() else []
        sections += parser.sections()
        return [
            Problem(
                name,
                f"[{profile}]",
                "profile not found",
                f"use one of {sections} as target.oci.profile, or add a [{profile}] section",
            ),
            *problems,
        ]
    if profile == "DEFAULT" and not parser.defaults():
        return [
            Problem(
                name,
                "[DEFAULT]",
                "profile not found",
                "add a [DEFAULT] section or name another profile",
            ),
            *problems,
        ]
    section = parser.defaults() if profile == "DEFAULT" else parser[profile]
    field = f"[{profile}]"
    token_auth = auth_type == "security_token"
    for key in REQUIRED_KEYS:
        if key == "region" and region:
            continue
        if key in ("user", "fingerprint") and token_auth:
            continue
        if not section.get(key):
            fix = f"add {key}= to the profile"
            if key in ("user", "fingerprint") and section.get("security_token_file"):
                fix = (
                    "this is a session-token profile (oci session authenticate): set "
                    "target.oci.auth: security_token (or OCI_CLI_AUTH=security_token)"
                )
            problems.append(Problem(name, f"{field} {key}", "is missing", fix))
    if token_auth:
        token = section.get("security_token_file")
        if not token:
            problems.append(
                Problem(
                    name,
                    f"{field} security_token_file",
                    "is missing (auth security_token)",
                    "run `oci session authenticate` for this profile, or use auth api_key",
                )
            )
        elif not Path(os.path.expanduser(token)).is_file():
            problems.append(
                Problem(
                    name,
                    f"{field} security_token_file",
                    f"token file {os.path.expanduser(token)} does not exist",
                    f"run `oci session authenticate --profile-name {profile}`",
                )
            )
    if section.get("user"):
        problems += check_ocid(section["user"], f"{field} user", name, "user")
    if section.get("tenancy"):
        problems += check_ocid(section["tenancy"], f"{field} tenancy", name, "tenancy")
    if section.get("fingerprint") and not FINGERPRINT_RE.match(section["fingerprint"]):
        problems.append(
            Problem(
                name,
                f"{field} fingerprint",
                "is not 16 colon-separated hex pairs",
                "copy the fingerprint shown next to the API key in the console",
            )
        )
    if region or section.get("region"):
        problems += check_region(region or section.get("region"), f"{field} region", name, regions)
    if section.get("key_file"):
        problems += check_key_file(section["key_file"], name, f"{field} key_file")
    return problems

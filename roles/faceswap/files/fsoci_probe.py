"""One read-only look at the host for the faceswap role; prints one JSON object.

Run as ``python -c "$(cat fsoci_probe.py)" '<json args>'`` with the interpreter that will make
the venv, so its version and modules are part of the answer. Written for any Python 3.6+ so
that an unsupported interpreter still answers (and the role can say why it is unsupported).
Args: {"user": str, "dirs": [paths], "read": [paths], "sha1": [paths], "list": [paths]}.
"""

import grp
import hashlib
import importlib.util
import json
import os
import pwd
import sys


def describe(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return {"owner": owner, "group": group, "mode": f"{st.st_mode & 0o7777:04o}"}


def read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, ValueError):
        return None


def sha1(path):
    try:
        with open(path, "rb") as handle:
            return hashlib.sha1(handle.read()).hexdigest()
    except OSError:
        return None


def listing(path):
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def main():
    args = json.loads(sys.argv[1])
    try:
        entry = pwd.getpwnam(args["user"])
        user = {"exists": True, "group": grp.getgrgid(entry.pw_gid).gr_name}
    except KeyError:
        user = {"exists": False, "group": ""}
    modules = ("venv", "ensurepip", "tkinter")
    print(
        json.dumps(
            {
                "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
                "missing": [m for m in modules if importlib.util.find_spec(m) is None],
                "user": user,
                "whoami": pwd.getpwuid(os.geteuid()).pw_name,
                "dirs": {p: describe(p) for p in args["dirs"]},
                "read": {p: read(p) for p in args["read"]},
                "sha1": {p: sha1(p) for p in args["sha1"]},
                "list": {p: listing(p) for p in args.get("list", [])},
            }
        )
    )


main()

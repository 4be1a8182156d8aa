#!/usr/bin/env python3
"""Render Faceswap ini files: Faceswap's own defaults for the installed commit, given values over.

Usage: fsoci_ini.py DEFAULTS_DIR INI_DIR SETTINGS_JSON [--check]

For each of extract/train/convert, DEFAULTS_DIR/<name>.ini (written by Faceswap itself on its
first start) is copied to INI_DIR/<name>.ini with the options in SETTINGS_JSON
({name: {section: {option: value}}}) replaced. A section or option Faceswap does not know is
an error naming the valid ones (Faceswap itself would silently drop it), and then no file
is written. A file is rewritten
only when its values differ from the wanted ones, compared as values, not text: Faceswap
rewrites the files it loads in its own layout. Prints one JSON object; exit 1 on error.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile

NAMES = ("extract", "train", "convert")
SECTION_RE = re.compile(r"^\[(?P<name>[^\]]+)\]\s*$")
OPTION_RE = re.compile(r"^(?P<key>[^#;\s][^=]*?)\s*=\s?(?P<value>.*)$")


def lines(text):
    """Yield (line, section, option) for each line of an ini text: the section it is in (a
    section's own line included), and the OPTION_RE match of an option line, else None."""
    section = None
    for line in text.splitlines():
        match = SECTION_RE.match(line)
        if match:
            section = match.group("name")
            yield line, section, None
        else:
            yield line, section, OPTION_RE.match(line)


def parse(text):
    """Return ({(section, option): value}, [sections in order])."""
    values = {}
    sections = []
    for line, section, option in lines(text):
        if SECTION_RE.match(line):
            sections.append(section)
        elif option and section is not None:
            values[(section, option.group("key"))] = option.group("value").strip()
    return values, sections


def render_value(value):
    if isinstance(value, bool):
        return "True" if value else "False"
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return " ".join(render_value(v) for v in value)
    return str(value)


def same(left, right):
    if left == right:
        return True
    if left.lower() in ("true", "false") and right.lower() in ("true", "false"):
        return left.lower() == right.lower()
    try:
        return float(left) == float(right)
    except ValueError:
        return False


def apply(text, overrides):
    """Return text with the options in overrides ({(section, option): str}) replaced."""
    out = []
    for line, section, option in lines(text):
        if option and (section, option.group("key")) in overrides:
            line = f"{option.group('key')} = {overrides[(section, option.group('key'))]}"
        out.append(line)
    return "\n".join(out) + "\n"


def check_known(name, settings, defaults, sections):
    problems = []
    for section, options in settings.items():
        if section not in sections:
            problems.append(
                f"{name}.ini has no section [{section}]; valid sections: {', '.join(sections)}"
            )
            continue
        if not isinstance(options, dict):
            problems.append(f"{name}.ini [{section}] must map option names to values")
            continue
        valid = [key for (sec, key) in defaults if sec == section]
        for option in options:
            if (section, option) not in defaults:
                problems.append(
                    f"{name}.ini [{section}] has no option '{option}'; "
                    f"valid options: {', '.join(valid)}"
                )
    return problems


def main(argv):
    if len(argv) not in (3, 4):
        print(json.dumps({"failed": True, "msg": __doc__}))
        return 1
    defaults_dir, ini_dir, settings_json = argv[:3]
    check = len(argv) == 4 and argv[3] == "--check"
    settings = json.loads(settings_json)
    unknown = sorted(set(settings) - set(NAMES))
    if unknown:
        print(json.dumps({"failed": True, "msg": f"unknown ini file(s) {unknown}; use {NAMES}"}))
        return 1
    problems = []
    writes = []
    for name in NAMES:
        source = os.path.join(defaults_dir, f"{name}.ini")
        try:
            with open(source, encoding="utf-8") as handle:
                default_text = handle.read()
        except OSError as exc:
            problems.append(f"cannot read Faceswap's default {source}: {exc}")
            continue
        defaults, sections = parse(default_text)
        wanted_settings = settings.get(name) or {}
        found = check_known(name, wanted_settings, defaults, sections)
        if found:
            problems.extend(found)
            continue
        overrides = {
            (section, option): render_value(value)
            for section, options in wanted_settings.items()
            for option, value in options.items()
        }
        wanted_text = apply(default_text, overrides)
        wanted, _ = parse(wanted_text)
        dest = os.path.join(ini_dir, f"{name}.ini")
        try:
            with open(dest, encoding="utf-8") as handle:
                current, _ = parse(handle.read())
        except OSError:
            current = None
        if (
            current is not None
            and set(current) == set(wanted)
            and all(same(current[key], wanted[key]) for key in wanted)
        ):
            continue
        writes.append((dest, wanted_text))
    if problems:
        msg = "faceswap_ini: " + "; ".join(problems)
        print(json.dumps({"failed": True, "msg": msg, "problems": problems}))
        return 1
    for dest, text in writes if not check else ():
        fd, tmp = tempfile.mkstemp(dir=ini_dir, prefix=".fsoci-", suffix=".ini")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    files = [dest for dest, _ in writes]
    print(json.dumps({"changed": bool(files), "files": files}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

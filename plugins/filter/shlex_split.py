"""Filter ``faceswap_oci.core.shlex_split``: split a shell-quoted option string into arguments.

Ansible's ``split`` cuts at every space, so a quoted path with a space (the job's state folder
in ``ansible_ssh_common_args``) would become two arguments; this splits as ``shlex`` (and so
Ansible's own ssh connection plugin) does.
"""

from __future__ import annotations

import shlex
from typing import Any

DOCUMENTATION = r"""
name: shlex_split
short_description: Split a shell-quoted string into a list of arguments
description:
  - Splits the input as a POSIX shell would (C(shlex.split)), keeping quoted spaces.
positional: _input
options:
  _input:
    description: The shell-quoted string.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Build an argv from ssh options
  ansible.builtin.debug:
    msg: "{{ ansible_ssh_common_args | faceswap_oci.core.shlex_split }}"
"""

RETURN = r"""
_value:
  description: The arguments.
  type: list
  elements: str
"""


def shlex_split(value: Any) -> list[str]:
    return shlex.split(str(value or ""))


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"shlex_split": shlex_split}

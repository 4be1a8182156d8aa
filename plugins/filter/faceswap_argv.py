"""Filter ``faceswap_oci.core.faceswap_argv``: Faceswap's command line from the one builder
(``module_utils/faceswap_cli.py``)."""

from __future__ import annotations

from typing import Any

from ansible_collections.faceswap_oci.core.plugins.module_utils import faceswap_cli
from ansible_collections.faceswap_oci.core.plugins.plugin_utils.filter_errors import filter_errors

DOCUMENTATION = r"""
name: faceswap_argv
short_description: The argv of C(faceswap.py extract|train|convert)
description:
  - Builds Faceswap's command line with the collection's one builder, whose flags a unit test
    checks against Faceswap's own argument lists at the pinned commit.
positional: _input, command
options:
  _input:
    description: The builder's arguments (C(python), C(script) and the command's options).
    type: dict
    required: true
  command:
    description: C(extract), C(train) or C(convert).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Build the extract command of side a
  ansible.builtin.set_fact:
    _argv: >-
      {{ {'python': '/opt/fs/venv/bin/python', 'script': '/opt/fs/faceswap/faceswap.py',
          'input': '/job/inputs/a/a.mp4', 'output': '/job/faces_a', 'detector': 's3fd',
          'aligner': 'fan', 'size': 512, 'every_n': 1, 'log': '/job/logs/extract_a.log'}
         | faceswap_oci.core.faceswap_argv('extract') }}
"""

RETURN = r"""
_value:
  description: The command line.
  type: list
  elements: str
"""


@filter_errors
def faceswap_argv(options: Any, command: str) -> list[str]:
    return faceswap_cli.faceswap_argv(command, options)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"faceswap_argv": faceswap_argv}

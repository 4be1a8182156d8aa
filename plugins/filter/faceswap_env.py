"""Filter ``faceswap_oci.core.faceswap_env``: the environment of a Faceswap process from the
one builder (``module_utils/faceswap_cli.py``)."""

from __future__ import annotations

from typing import Any

from ansible_collections.faceswap_oci.core.plugins.module_utils import faceswap_cli
from ansible_collections.faceswap_oci.core.plugins.plugin_utils.filter_errors import filter_errors

DOCUMENTATION = r"""
name: faceswap_env
short_description: The environment of C(faceswap.py extract|train|convert)
description:
  - Keras on torch, unbuffered output, C(FACESWAP_BACKEND) when the backend is set, OpenMP's
    passive wait (C(OMP_WAIT_POLICY=PASSIVE)) on the C(cpu) backend, then the given extra
    variables over them.
positional: _input, extra
options:
  _input:
    description: The Faceswap backend (C(cpu), C(nvidia), ...); empty lets Faceswap's config decide.
    type: str
    required: true
  extra:
    description: Variables set over the defaults (the role's C(*_env) option).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Run extract with Faceswap's environment
  ansible.builtin.command:
    argv: "{{ _argv }}"
  environment: "{{ 'cpu' | faceswap_oci.core.faceswap_env({'TMPDIR': '/job/tmp'}) }}"
"""

RETURN = r"""
_value:
  description: The environment.
  type: dict
"""


@filter_errors
def faceswap_env(backend: Any, extra: Any = None) -> dict[str, str]:
    return faceswap_cli.faceswap_env(backend, extra)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"faceswap_env": faceswap_env}

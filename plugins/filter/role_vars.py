"""Filter ``faceswap_oci.core.role_vars``: the options a role gets from the job spec.

The phase playbooks set their role's options from ``fsoci`` with it, through the one declared
map in ``module_utils/spec_map.py``; a field the job leaves out is not passed, so the role's own
default applies.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.faceswap_oci.core.plugins.module_utils import spec_map
from ansible_collections.faceswap_oci.core.plugins.plugin_utils.filter_errors import filter_errors

DOCUMENTATION = r"""
name: role_vars
short_description: The role options that the job spec sets
description:
  - Maps the job spec (C(fsoci)) onto the options of one role, by the declared map of
    C(plugins/module_utils/spec_map.py). Fields the spec leaves out are not in the result.
positional: _input, role
options:
  _input:
    description: The job spec (C(fsoci)).
    type: dict
    required: true
  role:
    description: The role's name, e.g. C(faceswap_train).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Set the train role's options from the job spec
  ansible.builtin.set_fact:
    "{{ item.key }}": "{{ item.value }}"
  loop: "{{ fsoci | faceswap_oci.core.role_vars('faceswap_train') | dict2items }}"
"""

RETURN = r"""
_value:
  description: Role option name -> value.
  type: dict
"""


@filter_errors
def role_vars(spec: Any, role: str) -> dict[str, Any]:
    return spec_map.role_vars(spec, role)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"role_vars": role_vars}

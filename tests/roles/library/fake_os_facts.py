#!/usr/bin/python
# Copyright: faceswap-oci developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test helper: set OS facts (distribution, kernel, ...) as if gathered on another host, so a
role's check-mode plan can be computed for Ubuntu or Oracle Linux on this machine."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: fake_os_facts
short_description: Set OS facts for a role's check-mode plan test
description: Returns the given facts as ansible_facts (each key gets the ansible_ prefix).
options:
  facts:
    description: Facts such as distribution, distribution_version, os_family, kernel.
    type: dict
    required: true
author: faceswap-oci developers
"""


def main() -> None:
    module = AnsibleModule(
        argument_spec={"facts": {"type": "dict", "required": True}}, supports_check_mode=True
    )
    facts = {f"ansible_{k}": v for k, v in module.params["facts"].items()}
    module.exit_json(changed=False, ansible_facts=facts)


if __name__ == "__main__":
    main()

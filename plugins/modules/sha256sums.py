#!/usr/bin/python
# Copyright: faceswap-oci developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sha256sums
short_description: sha256 and size of many files or folders on the host in one run
version_added: "0.1.0"
description:
  - Reads each path in 1 MiB blocks and returns its sha256 and size. One module run covers
    every path (M(ansible.builtin.stat) checksums one file per run, each a round trip).
  - A folder's sha256 covers its files in sorted order, each as its relative path, a NUL byte
    and its content, the same digest the faceswap-oci controller computes for a folder input.
  - A missing path gives V(null) values; the module never fails on one, so the caller can say
    which side is missing.
  - The remote half of M(faceswap_oci.core.media_push), usable on its own.
author: faceswap-oci developers (@faceswap-oci)
options:
  paths:
    description:
      - Absolute paths of files or folders on the host.
    type: list
    elements: path
    required: true
extends_documentation_fragment: [faceswap_oci.core.attributes.READ_ONLY]
attributes:
  platform:
    support: full
    platforms: posix
    description: Any POSIX host.
"""

EXAMPLES = r"""
- name: Checksum the inputs on the host
  faceswap_oci.core.sha256sums:
    paths:
      - /opt/faceswap-oci/jobs/demo/inputs/a/a.mp4
      - /opt/faceswap-oci/jobs/demo/inputs/b
  register: sums
"""

RETURN = r"""
files:
  description: Per path, its sha256 (hex) and size in bytes; both V(null) when it is missing.
  returned: always
  type: dict
  sample:
    /opt/faceswap-oci/jobs/demo/inputs/a/a.mp4:
      sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
      size: 1048576
"""

import os  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.faceswap_oci.core.plugins.module_utils.digests import (  # noqa: E402
    sha256_and_size,
)


def digest(path: str) -> dict[str, object]:
    found = sha256_and_size(path)
    return {"sha256": found[0], "size": found[1]} if found else {"sha256": None, "size": None}


def main() -> None:
    module = AnsibleModule(
        argument_spec={"paths": {"type": "list", "elements": "path", "required": True}},
        supports_check_mode=True,
    )
    paths = module.params["paths"]
    relative = [p for p in paths if not os.path.isabs(p)]
    if relative:
        module.fail_json(msg=f"paths must be absolute, got {relative}")
    try:
        files = {p: digest(p) for p in paths}
    except OSError as exc:
        module.fail_json(msg=f"cannot read {exc.filename}: {exc.strerror}")
    module.exit_json(changed=False, files=files)


if __name__ == "__main__":
    main()

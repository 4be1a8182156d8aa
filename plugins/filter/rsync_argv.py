"""Filter ``faceswap_oci.core.rsync_argv``: rsync's argv from the one builder
(``module_utils/rsync.py``), for the roles that run rsync as a command on the controller."""

from __future__ import annotations

from typing import Any

from ansible.module_utils.parsing.convert_bool import boolean
from ansible_collections.faceswap_oci.core.plugins.module_utils import rsync
from ansible_collections.faceswap_oci.core.plugins.plugin_utils.filter_errors import filter_errors

DOCUMENTATION = r"""
name: rsync_argv
short_description: The argv of an rsync between the controller and the host
description:
  - Builds the command with the collection's one rsync builder (ssh in batch mode without
    compression, the host's rsync as O(remote.become_user), C(--dry-run) when O(check)).
positional: _input, sources, dest
options:
  _input:
    description: rsync's transfer options (without C(rsync) itself).
    type: list
    elements: str
    required: true
  sources:
    description: What to copy (host paths when O(pull)).
    type: list
    elements: str
    required: true
  dest:
    description: Where to (a controller path when O(pull)).
    type: str
    required: true
  remote:
    description: Keys host, port, user, key, ssh_args, become_user, own_connection; an empty
      host means both ends are local.
    type: dict
    default: {}
  pull:
    description: Bring the host's O(sources) to the controller.
    type: bool
    default: false
  make_dest:
    description: Create the host's O(dest) in the same round trip (push only).
    type: bool
    default: false
  timeout:
    description: rsync's --timeout in seconds (0 - none).
    type: int
    default: 0
  check:
    description: Add --dry-run (pass C(ansible_check_mode)).
    type: bool
    default: false
  extra:
    description: More rsync arguments, after the built ones.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Bring the video back
  ansible.builtin.command:
    argv: >-
      {{ ['--times', '--stats'] | faceswap_oci.core.rsync_argv(
           ['/opt/job/out.mp4'], '/tmp/out/', remote={'host': ansible_host, 'user': ansible_user},
           pull=true, check=ansible_check_mode) }}
  delegate_to: localhost
  check_mode: false
  changed_when: false
"""

RETURN = r"""
_value:
  description: rsync's argv.
  type: list
  elements: str
"""


@filter_errors
def rsync_argv(
    options: Any,
    sources: Any,
    dest: Any,
    remote: Any = None,
    pull: Any = False,
    make_dest: Any = False,
    timeout: Any = 0,
    check: Any = False,
    extra: Any = (),
) -> list[str]:
    return rsync.rsync_argv(
        [str(o) for o in options],
        [str(s) for s in ([sources] if isinstance(sources, str) else sources)],
        str(dest),
        remote=rsync.remote_from(dict(remote or {})),
        pull=boolean(pull, strict=True),
        make_dest=boolean(make_dest, strict=True),
        timeout=int(timeout),
        check=boolean(check, strict=True),
        extra=[str(e) for e in extra or ()],
    )


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"rsync_argv": rsync_argv}

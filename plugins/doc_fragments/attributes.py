# Copyright: faceswap-oci developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The attributes the faceswap_oci.core modules share (as community.general.attributes does).

ansible-core merges a fragment's ``attributes`` into the module's key by key
(``ansible.utils.plugin_docs.merge_fragment``), so a module that extends ``DOCUMENTATION`` only
says what its check mode does and why a second run changes nothing.
"""

from __future__ import annotations


class ModuleDocFragment:
    # The modules that create or remove a job's resources.
    DOCUMENTATION = r"""
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
    description: Returns what it created, changed or removed instead of a diff.
  idempotent:
    support: full
"""

    # The modules that only read (the _info modules and the host probes).
    READ_ONLY = r"""
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to diff.
  idempotent:
    support: full
    description: Read-only; never reports a change.
"""

#!/usr/bin/python
# Copyright: faceswap-oci developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The work is done by the action plugin of the same name (plugins/action/media_push.py) on
# the controller; this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: media_push
short_description: Send media from the controller to the host with rsync, sha256-verified
version_added: "0.1.0"
description:
  - Sends each side's medium (a file or a folder) and, when present, its
    C(<stem>_alignments.json) to O(dest)/<side>/ in one C(rsync) run over the host's SSH link
    (or a local copy for a C(local) connection).
  - rsync semantics; only missing or changed bytes move (C(--inplace --no-whole-file)), so an
    upload cut half-way resumes from what arrived; nothing is held in memory.
  - After a transfer, compares the sha256 of every transferred path on the host (one run of
    M(faceswap_oci.core.sha256sums), with the task's C(become) settings) with the controller's,
    taken from O(expected_sha256) or computed meanwhile; a mismatch fails the task.
  - Reports C(changed) only when rsync transferred a file, and what moved in RV(upload).
author: faceswap-oci developers (@faceswap-oci)
options:
  sources:
    description: Side name (C(a), C(b)) to the absolute controller path of its medium.
    type: dict
    required: true
  dest:
    description: Absolute folder on the host; side X goes to O(dest)/X/. Made when missing.
    type: str
    required: true
  sidecars:
    description: Also send C(<stem>_alignments.json) beside a medium when it exists.
    type: bool
    default: true
  expected_sha256:
    description: Controller path to its known sha256, to skip hashing it again.
    type: dict
    default: {}
  verify:
    description: Compare sha256 on both sides after a transfer.
    type: bool
    default: true
  become_user:
    description: Write on the host as this user (C(sudo -n -u)); empty writes as the SSH user.
    type: str
    default: ""
  local:
    description: The host is the controller itself (no SSH).
    type: bool
    default: false
  ssh_host:
    description: Address of the host.
    type: str
    default: ""
  ssh_port:
    description: SSH port of the host.
    type: int
    default: 22
  ssh_user:
    description: SSH user.
    type: str
    default: ""
  ssh_key:
    description: Private key file.
    type: str
    default: ""
  ssh_args:
    description: Further ssh options (host-key options, jump hosts), as one string.
    type: str
    default: ""
  rsync_args:
    description: Extra rsync arguments, for example C(--bwlimit=50m).
    type: list
    elements: str
    default: []
  io_timeout:
    description: Seconds without I/O after which rsync gives up (a re-run resumes).
    type: int
    default: 300
attributes:
  action:
    support: full
    description: Runs on the controller as an action plugin.
  check_mode:
    support: full
    description: rsync runs with --dry-run, reports what would be sent and sends, creates and
      verifies nothing.
  diff_mode:
    support: none
    description: No diff.
  platform:
    support: full
    platforms: posix
    description: rsync on the controller and on the host.
notes:
  - Needs C(rsync) on both sides, and C(sudo) on the host when O(become_user) is set.
"""

EXAMPLES = r"""
- name: Send the A and B media
  faceswap_oci.core.media_push:
    sources:
      a: /data/a.mp4
      b: /data/b.mp4
    dest: /opt/faceswap-oci/jobs/demo/inputs
    become_user: faceswap
    ssh_host: 192.0.2.10
    ssh_user: opc
  become: true
  become_user: faceswap
"""

RETURN = r"""
transferred:
  description: The names (side/basename) rsync transferred.
  returned: success
  type: list
  elements: str
  sample: [a/a.mp4]
upload:
  description:
    - What moved; per side its files, bytes sent and files transferred; in all the bytes sent,
      the files transferred, whether sha256 was compared and rsync's seconds.
  returned: success
  type: dict
  sample:
    sides:
      a: {files: [a.mp4, a_alignments.json], bytes_sent: 1048576, files_transferred: 2}
    bytes_sent: 1048576
    files_transferred: 2
    verified: true
    rsync_seconds: 0.4
"""

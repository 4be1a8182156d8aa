"""Test bed: booted Debian hosts (systemd-nspawn in network namespaces) for the project's tests.

``python -m tests.testbed up NAME --json`` boots a host; :class:`Testbed` is the Python API and
``tests.testbed.fixtures`` the pytest plugin. See docs/testing.md.
"""

from tests.testbed.core import (
    BRIDGE,
    BRIDGE_ADDRESS,
    NETNS_PREFIX,
    VETH_PREFIX,
    Host,
    Testbed,
    TestbedError,
    TestbedUnsupported,
    ansible_inventory,
    state_dir,
)

__all__ = [
    "BRIDGE",
    "BRIDGE_ADDRESS",
    "NETNS_PREFIX",
    "VETH_PREFIX",
    "Host",
    "Testbed",
    "TestbedError",
    "TestbedUnsupported",
    "ansible_inventory",
    "state_dir",
]

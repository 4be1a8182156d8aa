"""Verify the smoke scenario: the unit is installed, enabled, running and stops on SIGINT."""

import signal


def test_unit_file_asks_for_sigint(host):
    unit = host.file("/etc/systemd/system/testbed-unit.service")
    assert unit.is_file
    assert unit.mode == 0o644
    assert "KillSignal=SIGINT" in unit.content_string


def test_service_running_and_enabled(host):
    service = host.service("testbed-unit")
    assert service.is_running
    assert service.is_enabled


def test_systemd_will_send_sigint(host):
    kill_signal = host.check_output("systemctl show -p KillSignal --value testbed-unit")
    assert int(kill_signal) == signal.SIGINT


def test_host_is_a_booted_systemd(host):
    assert host.check_output("cat /proc/1/comm") == "systemd"
    state = host.run("systemctl is-system-running --wait").stdout.strip()
    assert state == "running", host.run("systemctl --failed --no-legend").stdout

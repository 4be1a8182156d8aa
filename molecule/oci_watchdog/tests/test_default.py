"""Verify oci_watchdog: a persistent timer that powers the host off at a fixed deadline."""

import datetime as dt


def _deadline(host):
    text = host.file("/etc/faceswap-oci/watchdog-deadline").content_string.strip()
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=dt.UTC)


def test_deadline_is_about_max_hours_from_now(host):
    left = _deadline(host) - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=23) < left <= dt.timedelta(hours=24)


def test_timer_is_enabled_and_waiting_for_the_deadline(host):
    timer = host.service("fsoci-watchdog.timer")
    assert timer.is_enabled
    assert timer.is_running
    calendar = host.run("systemctl show -p TimersCalendar fsoci-watchdog.timer").stdout
    assert _deadline(host).strftime("%Y-%m-%d %H:%M:%S") in calendar


def test_timer_fires_after_a_missed_deadline_at_boot(host):
    assert "Persistent=true" in host.file("/etc/systemd/system/fsoci-watchdog.timer").content_string


def test_service_powers_off(host):
    unit = host.file("/etc/systemd/system/fsoci-watchdog.service").content_string
    assert "ExecStart=/usr/bin/systemctl poweroff" in unit
    assert not host.service("fsoci-watchdog.service").is_running

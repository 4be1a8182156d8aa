"""The dashboard in a real browser: Debian's chromium, headless, driven by Selenium through
chromium-driver, on the state of a real run of the demo job."""

from __future__ import annotations

import json
import os
import shutil
import struct
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader

from tests.dashboard.conftest import Dashboard
from tests.pipeline.jobs import ffprobe

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

pytestmark = [pytest.mark.faceswap, pytest.mark.slow]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    if not (Path(CHROMIUM).is_file() and Path(DRIVER).is_file()):
        pytest.fail(
            "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--autoplay-policy=no-user-gesture-required",
        "--window-size=1400,1500",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _row(browser: webdriver.Chrome, name: str) -> tuple[str, str] | None:
    """The job's row in the list as (link text, row text); the list is redrawn as events
    arrive, so an element found a moment ago may be gone: read it again then."""
    try:
        rows = browser.find_elements(By.CSS_SELECTOR, f'#jobs tr[data-job="{name}"]')
        return (rows[0].find_element(By.TAG_NAME, "a").text, rows[0].text) if rows else None
    except StaleElementReferenceException:
        return None


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def tensorboard_steps(folder: Path) -> set[int]:
    """The steps with a loss A value, read with tensorboard's own event file loader."""
    steps = set()
    for path in folder.rglob("events.out.tfevents.*"):
        for event in LegacyEventFileLoader(str(path)).Load():
            if any(v.tag == "batch_face_A" for v in event.summary.value):
                steps.add(event.step)
    return steps


def artifacts_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("FSOCI_TEST_ARTIFACTS") or tmp_path / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_dashboard_shows_the_demo_job(
    served_copy: tuple[Dashboard, Path],
    demo_job: tuple[Path, str, Path],
    browser: webdriver.Chrome,
    tmp_path: Path,
) -> None:
    dashboard, state = served_copy
    _state_dir, name, output = demo_job

    # the job list shows the job
    browser.get(dashboard.url)
    link, text = wait_for(lambda: _row(browser, name), "the row")
    assert link == name
    assert "finished" in text

    # the job page: the preview is a PNG of the size of the pulled-back preview
    browser.get(f"{dashboard.url}job/{name}")
    img = wait_for(
        lambda: browser.execute_script(
            "const i = document.getElementById('preview');"
            "return i && !i.hidden && i.complete && i.naturalWidth > 0 ? i : null;"
        ),
        "the preview image",
    )
    src = img.get_attribute("src")
    with urllib.request.urlopen(src) as response:
        served = response.read()
        assert response.headers["Content-Type"] == "image/png"
    on_disk = png_size((state / "preview.png").read_bytes())
    assert png_size(served) == on_disk
    natural = browser.execute_script(
        "return [arguments[0].naturalWidth, arguments[0].naturalHeight]", img
    )
    assert tuple(natural) == on_disk

    # the loss chart has one point per step of the TensorBoard log
    steps = tensorboard_steps(state / "tensorboard")
    assert steps, "the train phase brought no TensorBoard event files back"
    points = wait_for(
        lambda: browser.execute_script(
            "return window.fsociCharts ? window.fsociCharts.loss.data[0].length : 0"
        ),
        "the loss chart",
    )
    assert points == len(steps)
    assert browser.execute_script("return Array.from(window.fsociCharts.loss.data[0])") == sorted(
        steps
    )

    # the video element plays the output: its duration is the file's
    expected = float(ffprobe(output / f"{name}.mp4")["format"]["duration"])
    duration = wait_for(
        lambda: browser.execute_script(
            "const v = document.getElementById('video');"
            "return v && v.readyState >= 1 ? v.duration : 0"
        ),
        "the video's metadata",
    )
    assert abs(duration - expected) < 0.1
    browser.execute_script("const v = document.getElementById('video'); v.muted = true; v.play();")
    wait_for(
        lambda: browser.execute_script("return document.getElementById('video').currentTime > 0"),
        "the video to play",
    )
    manifest = json.loads(browser.find_element(By.ID, "manifest").text)
    assert manifest == json.loads((output / f"{name}.manifest.json").read_text())

    # an event appended to the state shows up without a reload (server-sent events)
    browser.execute_script("window.fsociNoReload = 'still here';")
    marker = f"dashboard-test-{time.time_ns()}"
    event = {"event": "Report", "phase": "train", "report": marker, "data": {}, "at": time.time()}
    with (state / "events.jsonl").open("a") as log:
        log.write(json.dumps(event) + "\n")
    wait_for(lambda: marker in browser.find_element(By.ID, "events").text, "the appended event", 15)
    assert browser.execute_script("return window.fsociNoReload") == "still here"

    shot = artifacts_dir(tmp_path) / "dashboard-job.png"
    browser.execute_script("document.getElementById('video').pause(); window.scrollTo(0, 0);")
    assert browser.save_screenshot(str(shot))
    print(f"screenshot: {shot}")

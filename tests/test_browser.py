"""End to end in real headless Chromium (Debian's package, driven by Playwright for Python):
load the page, run a prompt on the embedded model, wait for streamed tokens and the gate chart,
save a screenshot (docs/live.png when HRPO_SCREENSHOT is set, else a temp file)."""
import os
import shutil

from conftest import ROOT
from test_app import start_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def test_live_tab_in_chromium(tmp_path):
    from playwright.sync_api import sync_playwright
    assert os.path.exists(CHROMIUM), "Debian's chromium is required (.ci/run installs it)"
    app, url = start_app(tmp_path / "app.log", HRPO_MODEL="default")
    shot = ROOT / "docs" / "live.png" if os.environ.get("HRPO_SCREENSHOT") else tmp_path / "live.png"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"])
            page = browser.new_page(viewport={"width": 1280, "height": 1500})
            page.goto(url, timeout=30000)
            page.wait_for_selector("#run", timeout=30000)
            page.locator("#prompt textarea").fill("Tom has 12 marbles. He buys 7 more. How many marbles does he have?")
            page.click("#run")
            page.wait_for_function("document.querySelectorAll('#tokens .tok').length >= 8", timeout=180000)
            page.wait_for_selector("#gate-chart .js-plotly-plot", timeout=180000)
            page.wait_for_function("document.querySelector('#run-status').innerText.includes('done')", timeout=300000)
            n = page.locator("#tokens .tok").count()
            assert n >= 8
            assert "hidden ratio" in page.locator("#tokens").inner_text()
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=False)
            browser.close()
    finally:
        app.terminate()
        app.wait(timeout=30)
    assert shot.stat().st_size > 10_000

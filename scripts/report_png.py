"""Screenshot figures of an analysis report (report.html) to PNG with headless Chromium.

    python -m scripts.report_png reports/mgsm-zh/report.html docs/report 0 3
writes docs/report-0.png and docs/report-3.png (the report's figures fig-0 and fig-3).
"""
import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

html, prefix, *figs = sys.argv[1:]
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium", headless=True,
                                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(Path(html).resolve().as_uri())
    for i in figs:
        page.wait_for_selector(f"#fig-{i} .main-svg")
        page.locator(f"#fig-{i}").screenshot(path=f"{prefix}-{i}.png")
        print(f"{prefix}-{i}.png")
    browser.close()

"""Take the README screenshots of the app's Live tab in headless Chromium (as tests/test_browser.py drives it).

    python -m scripts.screenshots [--out docs] [--model checkpoints/smollm2-arith-hrpo]
starts `python app.py` on a free loopback port (the model the Live tab opens on unless --model is given),
runs an English and a Chinese prompt and writes OUT/live.png and OUT/live-zh.png.  Needs Debian's chromium
and the Noto CJK fonts (setup.sh installs both where apt and root are available), else Chinese shows boxes.
"""
import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = {"live.png": "Tom has 12 marbles. He buys 7 more. How many marbles does Tom have now?",
           "live-zh.png": "小明有5个苹果，又买了3个。他现在有几个苹果？"}


def shoot(page, url: str, prompt: str, path: Path) -> str:
    page.goto(url, timeout=60000)
    page.wait_for_selector("#run", timeout=60000)
    page.locator("#prompt textarea").fill(prompt)
    page.click("#run")
    page.wait_for_function("document.querySelector('#run-status').innerText.includes('done')", timeout=600000)
    page.wait_for_function("document.querySelector('#gate-chart').innerText.includes('effective vocabulary')",
                           timeout=60000)
    page.wait_for_timeout(1000)                                    # let plotly finish drawing
    page.screenshot(path=str(path), full_page=False)
    return page.locator("#run-status").inner_text()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs"), help="directory for live.png and live-zh.png")
    ap.add_argument("--model", default=None, help="HRPO_MODEL for the app (default: what the Live tab opens on)")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright
    if shutil.which("fc-list") and not subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True).stdout:
        print("warning: no CJK font installed (apt-get install fonts-noto-cjk): Chinese will show boxes",
              file=sys.stderr)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from bench.app_process import start_app, stop_app
    log = out / ".screenshots-app.log"
    env = {k: v for k, v in os.environ.items() if k != "HRPO_MODEL"}
    app, url, _ = start_app(env={"HRPO_MODEL": args.model} if args.model else {}, base_env=env, log=log, limit_s=120)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium", headless=True,
                                        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1280, "height": 1500})
            for name, prompt in PROMPTS.items():
                status = shoot(page, url, prompt, out / name)
                print(f"{out / name}: {status}")
            browser.close()
    finally:
        stop_app(app)
        log.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

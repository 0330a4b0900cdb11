"""Draw the training-dynamics figure (analysis/dynamics.py, like the paper's Fig. 4) from metrics.jsonl files.

    python -m scripts.plot_dynamics checkpoints/smollm2-arith-hrpo checkpoints/smollm2-arith-grpo \\
        --out docs/dynamics [--smooth 5] [--title ...] [--no-png]
Each argument is a run or checkpoint directory, a metrics.jsonl file, or LABEL=PATH; the mode (HRPO/GRPO)
comes from the config beside the file.  Writes OUT.html (self-contained, plotly.js inlined) and, through
headless Chromium (Debian's package, driven by Playwright as in scripts/report_png.py), OUT.png.
"""
import argparse
import shutil
import sys
from pathlib import Path

from analysis.dynamics import dynamics_figure, load_runs


def parse_sources(args: list[str]) -> dict:
    """{label: run dir} from DIR, DIR/metrics.jsonl or LABEL=PATH arguments."""
    out = {}
    for arg in args:
        label, _, path = arg.partition("=") if "=" in arg else ("", "", arg)
        p = Path(path)
        d = p.parent if p.name.endswith(".jsonl") else p
        if not (d / "metrics.jsonl").is_file():
            raise SystemExit(f"error: no metrics.jsonl in {d}")
        out[label or d.name] = d
    return out


def to_png(html: Path, png: Path, width: int = 1200, height: int = 640) -> None:
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium", headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": width + 40, "height": height + 40})
        page.goto(html.resolve().as_uri())
        page.wait_for_selector("#dynamics .main-svg")
        page.locator("#dynamics").screenshot(path=str(png))
        browser.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sources", nargs="+", help="run/checkpoint dirs, metrics.jsonl files or LABEL=PATH")
    ap.add_argument("--out", required=True, help="output prefix: writes OUT.html and OUT.png")
    ap.add_argument("--smooth", type=int, default=1, help="moving-average window in steps")
    ap.add_argument("--title", default="Training dynamics")
    ap.add_argument("--no-png", action="store_true", help="only the HTML")
    args = ap.parse_args(argv)
    fig = dynamics_figure(load_runs(parse_sources(args.sources)), smooth=args.smooth, title=args.title, height=640)
    fig.update_layout(width=1200)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    html = out.with_name(out.name + ".html")
    html.write_text(fig.to_html(include_plotlyjs=True, div_id="dynamics", full_html=True), encoding="utf-8")
    print(html)
    if not args.no_png:
        png = out.with_name(out.name + ".png")
        to_png(html, png)
        print(png)
    return 0


if __name__ == "__main__":
    sys.exit(main())

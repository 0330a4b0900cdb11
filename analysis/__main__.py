"""Command line of the analysis package: `python -m analysis compare ...` and `python -m analysis crosslingual ...`.

  python -m analysis compare --models default,checkpoints/grpo,checkpoints/hrpo --task mgsm:zh \\
      --limit 20 --out reports/zh [--max-new-tokens N] [--greedy] [--map auto|umap|pca] [--ablation] [--png]

Decodes the same problems with every model (comma-separated hrpo.models.load_model specs) and
writes to --out: lengths.csv, summary.csv, paired.csv, steps.csv, positions.csv, scripts.csv,
latent_scripts.csv, gate_histogram.csv, map.csv, traces.csv, selectivity.csv (gate selectivity per model:
p90/p10 of the per-token hidden ratio, its mean by token type and line position; hrpo.selectivity)
and report.html (one self-contained page,
plotly.js inlined, opens offline); --png also writes each figure as PNG when kaleido is installed;
--ablation decodes every hybrid model again with the gate forced to a = 1 from the first step and adds
the columns accuracy_a1, mean_len_a1 and accuracy_drop to summary.csv (does it use its latents?).
Bad specs, tasks or values end with one line on stderr and exit code 2, never a stack trace; an --out
that is empty, the current directory, home or a parent of either is refused before any decoding.

  python -m analysis crosslingual --models gemma3-270m,checkpoints/<grpo>,checkpoints/<hrpo> --langs th,zh,en \\
      --limit 10 --greedy --out reports/crosslingual [--png]

decodes MGSM problems in each language with every model and writes crosslingual.csv (the scripts of the
sampled tokens and of the latents' nearest tokens, relative to the prompt's script; analysis.crosslingual),
summary.csv and report.html (one figure).
Test: pytest tests/test_analysis_report.py tests/test_analysis_crosslingual.py tests/test_reliability_files.py
"""
import argparse
import dataclasses
import os
import re
import sys
from pathlib import Path

CSV_TABLES = {"lengths": "lengths.csv", "summary": "summary.csv", "paired": "paired.csv", "steps": "steps.csv",
              "positions": "positions.csv", "scripts": "scripts.csv", "latent_scripts": "latent_scripts.csv",
              "histogram": "gate_histogram.csv", "map": "map.csv", "traces": "traces.csv",
              "selectivity": "selectivity.csv"}


def build_parser() -> argparse.ArgumentParser:
    from hrpo.config import RolloutConfig
    d = RolloutConfig()
    common = argparse.ArgumentParser(add_help=False)        # what both commands take
    common.add_argument("--models", required=True, help="comma-separated model specs (default, tiny-random, HF "
                                                        "name/dir, .gguf, checkpoint dir); the first is the baseline")
    common.add_argument("--limit", type=int, default=20, help="number of problems (per language: crosslingual)")
    common.add_argument("--out", required=True, help="output directory (created)")
    common.add_argument("--max-new-tokens", type=int, default=256)
    common.add_argument("--temperature", type=float, default=d.temperature)
    common.add_argument("--top-k", type=int, default=d.top_k)
    common.add_argument("--greedy", action="store_true", help="argmax decoding")
    common.add_argument("--seed", type=int, default=d.seed)
    common.add_argument("--batch-size", type=int, default=16)
    common.add_argument("--k", type=int, default=5, help="nearest tokens per latent")
    common.add_argument("--device", default=None)
    common.add_argument("--dtype", default=None)
    common.add_argument("--png", action="store_true", help="also write every figure as PNG (needs kaleido)")
    parser = argparse.ArgumentParser(prog="python -m analysis", description="HRPO studio trace analysis")
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compare", parents=[common],
                       help="lengths, accuracy, gates, scripts and a UMAP for several models")
    c.add_argument("--task", default="mgsm:zh", help="arith[:level] | gsm8k | mgsm:<lang> | jsonl:PATH")
    c.add_argument("--split", default="test", help="train or test")
    c.add_argument("--no-hybrid", action="store_true", help="plain decoding for every model")
    c.add_argument("--map", default="auto", choices=("auto", "umap", "pca"),
                   help="2-D map of the latents: UMAP, PCA, or auto (PCA under 15 points)")
    c.add_argument("--ablation", action="store_true",
                   help="latent ablation: also decode each hybrid model with a forced to 1 (summary columns)")
    x = sub.add_parser("crosslingual", parents=[common],
                       help="per MGSM language: the scripts of the text and of the latents' nearest tokens")
    from hrpo.tasks import MGSM_LANGS
    x.add_argument("--langs", default=",".join(MGSM_LANGS), help="comma-separated MGSM languages (default: all)")
    return parser


def specs_cfg_out(args) -> tuple[list[str], "RolloutConfig", Path]:  # noqa: F821
    """The checked model specs, rollout config and output directory of either command (ValueError /
    ModelSpecError before anything loads); the command checks its tasks, then check_output_dir."""
    from hrpo.config import RolloutConfig, unsafe_dir
    from hrpo.models import check_spec
    specs = [s.strip() for s in args.models.split(",") if s.strip()]
    if not specs:
        raise ValueError("--models is empty")
    if args.batch_size < 1 or args.k < 1:
        raise ValueError("--batch-size and --k must be >= 1")
    cfg = RolloutConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                        greedy=args.greedy, hybrid=not getattr(args, "no_hybrid", False), seed=args.seed)
    bad = unsafe_dir(args.out)
    if bad:
        raise ValueError(f"--out {args.out!r} {bad}: give the report a directory of its own, e.g. reports/<name>")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a directory")
    for spec in specs:                               # everything checked before the first model decodes
        check_spec(spec)
    return specs, cfg, out


def write_pngs(figures: dict, out: Path) -> str:
    """Write figures as PNG; returns a one-line note (what was written or why not)."""
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return "PNG export skipped: kaleido is not installed"
    for i, (name, fig) in enumerate(figures.items()):
        slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
        fig.write_image(out / f"fig{i:02d}_{slug}.png", width=1000, height=600)
    return f"wrote {len(figures)} PNG figures"


def cmd_compare(args) -> int:
    from .export import csv_text
    from .report import render_html, report_figures, run_compare
    specs, cfg, out = specs_cfg_out(args)
    from hrpo.rundir import check_output_dir
    from hrpo.tasks import load_task
    load_task(args.task, args.split, limit=args.limit)
    check_output_dir(out)
    tables, meta = run_compare(specs, args.task, args.limit, cfg, split=args.split, batch_size=args.batch_size,
                               k=args.k, map_method=args.map, device=args.device, dtype=args.dtype,
                               ablation=args.ablation,
                               on_model=lambda m: print(f"decoding with {m} ...", file=sys.stderr, flush=True))
    from hrpo.selectivity import selectivity_frame
    tables["selectivity"] = selectivity_frame(tables["steps"])
    figures = report_figures(tables)
    out.mkdir(parents=True, exist_ok=True)
    for key, name in CSV_TABLES.items():
        (out / name).write_text(csv_text(tables[key]), encoding="utf-8")
    page = render_html(f"HRPO studio: {', '.join(specs)} on {args.task}", figures,
                       {"Summary": tables["summary"], "Gate selectivity": tables["selectivity"]}, meta)
    (out / "report.html").write_text(page, encoding="utf-8")
    if args.png:
        print(write_pngs(figures, out), file=sys.stderr)
    print(f"report: {out / 'report.html'}")
    return 0


def cmd_crosslingual(args) -> int:
    from .crosslingual import run_crosslingual
    from .export import csv_text
    from .plots import crosslingual_figure
    from .report import render_html
    specs, cfg, out = specs_cfg_out(args)
    from hrpo.rundir import check_output_dir
    from hrpo.tasks import load_task
    langs = [x.strip() for x in args.langs.split(",") if x.strip()]
    for lang in langs or [""]:
        load_task(f"mgsm:{lang}", "test", limit=args.limit)
    check_output_dir(out)
    classes, summary = run_crosslingual(specs, langs, args.limit, cfg, k=args.k, batch_size=args.batch_size,
                                        device=args.device, dtype=args.dtype,
                                        on_model=lambda m: print(f"decoding with {m} ...", file=sys.stderr,
                                                                 flush=True))
    out.mkdir(parents=True, exist_ok=True)
    (out / "crosslingual.csv").write_text(csv_text(classes), encoding="utf-8")
    (out / "summary.csv").write_text(csv_text(summary), encoding="utf-8")
    figures = {"crosslingual": crosslingual_figure(classes)}
    meta = {"models": ", ".join(specs), "languages": ", ".join(langs), "problems per language": args.limit,
            **{f"rollout.{k}": v for k, v in dataclasses.asdict(cfg).items()}}
    page = render_html(f"HRPO studio: cross-lingual view, {', '.join(specs)}", figures, {"Summary": summary}, meta)
    (out / "report.html").write_text(page, encoding="utf-8")
    if args.png:
        print(write_pngs(figures, out), file=sys.stderr)
    print(f"report: {out / 'report.html'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    from hrpo.cli import quiet_libraries
    from hrpo.config import ConfigError
    from hrpo.models import ModelSpecError
    quiet_libraries()
    try:
        return (cmd_crosslingual if args.command == "crosslingual" else cmd_compare)(args)
    except (ConfigError, ModelSpecError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""Command-line entry points: `python -m hrpo generate | train | eval | bench`.

generate: one prompt through the hybrid decoder; readable text (tokens shaded by hidden ratio on
a terminal) or, with --json, one JSON object with every step and the latent's nearest tokens.
Each command turns expected failures (bad spec, bad value, empty prompt) into one line on stderr
and exit code 2, never a stack trace.  Test: pytest tests/test_cli.py
"""
import argparse
import dataclasses
import json
import os
import signal
import sys
import warnings

from .config import ConfigError, RolloutConfig, TrainingError
from .prompts import check_prompt
from .stopping import STOP_RULES


class UsageError(ValueError):
    """A user mistake the CLI reports in one line."""


def quiet_libraries() -> None:
    """No progress bars or advisory warnings from transformers on the CLI."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", category=FutureWarning)
    import transformers
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def shade(trace, tty: bool) -> str:
    """The completion with each token's background shaded by its hidden ratio (ANSI 256 colours)."""
    if not tty:
        return trace.text
    top = max((s.hidden_ratio for s in trace.steps), default=0.0) or 1.0
    ramp = [255, 254, 253, 252, 230, 229, 228, 222, 221, 215, 214, 208]
    out = []
    for s in trace.steps:
        level = ramp[min(len(ramp) - 1, int(s.hidden_ratio / top * (len(ramp) - 1)))]
        out.append(f"\x1b[48;5;{level}m\x1b[30m{s.token}\x1b[0m")
    return "".join(out) + f"\n\x1b[2m(shading: hidden ratio 0 .. {top:.4f})\x1b[0m"


def sampling_config(args) -> RolloutConfig:
    """The RolloutConfig of the sampling flags (add_sampling_args)."""
    return RolloutConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                         greedy=args.greedy, hybrid=not args.no_hybrid, seed=args.seed, stop=args.stop)


def cmd_generate(args) -> int:
    from . import trace_file
    from .models import load_model
    from .static_decoder import make_decoder
    check_prompt(args.prompt)
    cfg = sampling_config(args)
    keep = bool(args.json or args.save)
    if args.save and (os.path.isdir(args.save) or not os.path.isdir(os.path.dirname(os.path.abspath(args.save)))):
        raise ValueError(f"--save {args.save!r}: name a file in an existing directory")
    hm = load_model(args.model, device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code)
    dec = make_decoder(hm, [args.prompt], cfg, raw=args.raw, keep_states=keep)
    trace, cfg = dec.run()[0], dec.cfg           # dec.cfg: plain decoding for a GRPO checkpoint
    if keep:
        text = trace_file.dump(trace_file.of_decode(hm, args.model or "default", dec, args.prompt))
        if args.save:
            write_atomically(args.save, text)
        if args.json:
            print(text)
            return 0
    print(shade(trace, sys.stdout.isatty()))
    thinking = sum(s.thinking for s in trace.steps)
    mean_hr = sum(s.hidden_ratio for s in trace.steps) / max(1, len(trace.steps))
    print(f"\n-- answer: {trace.answer}  | {len(trace.token_ids)} tokens ({thinking} thinking), "
          f"mean hidden ratio {mean_hr:.4f}, {dec.tokens_per_s:.1f} tokens/s, hybrid={'on' if cfg.hybrid else 'off'}")
    return 0


def config_flags(p: argparse.ArgumentParser, cls) -> None:
    """One --flag per dataclass field, help from the field; unset flags stay out of the namespace."""
    for f in dataclasses.fields(cls):
        flag, help_ = "--" + f.name.replace("_", "-"), f.metadata.get("help", "")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if isinstance(default, bool):
            p.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                           help=help_)
        elif isinstance(default, list):
            p.add_argument(flag, dest=f.name, type=lambda v: [x for x in v.split(",") if x], default=argparse.SUPPRESS,
                           help=help_ + " (comma-separated)")
        else:
            kind = type(default) if default is not None else str
            p.add_argument(flag, dest=f.name, type=kind, default=argparse.SUPPRESS,
                           help=f"{help_} (default: {default})")


def cmd_train(args) -> int:
    from .config import TrainConfig
    from .trainer import Trainer
    values = TrainConfig.from_json(args.config).to_dict() if args.config else {}
    saved = os.path.join(getattr(args, "out", TrainConfig().out), "train_config.json")
    if args.resume and not args.config and os.path.isfile(saved):   # resume with the run's own settings
        values = TrainConfig.from_json(saved).to_dict()
    values.update({f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)})
    cfg = TrainConfig.from_dict(values)
    bar = None

    def report(m: dict) -> None:
        nonlocal bar
        if trainer.acc.is_main_process and sys.stderr.isatty():
            from tqdm import tqdm
            bar = bar or tqdm(total=cfg.steps, initial=m["step"] - 1, desc=f"{cfg.mode} train", unit="step")
            bar.set_postfix(reward=f"{m['reward_mean']:.2f}", len=f"{m['completion_len_mean']:.0f}",
                            hidden=f"{m['hidden_ratio_mean']:.3f}", drift=f"{m['logprob_drift']:.1e}")
            bar.update(1)
        elif trainer.acc.is_main_process:
            print(f"step {m['step']}/{cfg.steps} reward {m['reward_mean']:.3f} acc {m['accuracy']:.3f} "
                  f"len {m['completion_len_mean']:.1f} hidden {m['hidden_ratio_mean']:.4f} kl {m['kl']:.2e} "
                  f"drift {m['logprob_drift']:.1e} {m['step_seconds']:.1f}s", flush=True)
    stop = []   # SIGTERM (the app's stop button): finish the step, checkpoint, exit cleanly
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    trainer = Trainer(cfg, callback=report, resume=args.resume, should_stop=lambda: bool(stop))
    last = trainer.train()
    if bar is not None:
        bar.close()
    import torch.distributed as dist
    if dist.is_initialized():      # a clean exit under torchrun: no gloo/nccl thread left at shutdown
        trainer.acc.wait_for_everyone()
        dist.destroy_process_group()
    if trainer.acc.is_main_process:
        print(f"checkpoint: {last}")
    return 0


def write_atomically(path: str, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it over `path`."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def cmd_eval(args) -> int:
    from .evaluate import evaluate
    from .models import load_model
    from .rollout import decoding_config
    from .tasks import load_task
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.out and (os.path.isdir(args.out) or not os.path.isdir(os.path.dirname(os.path.abspath(args.out)))):
        raise UsageError(f"--out {args.out}: not a file path in an existing directory")
    task = load_task(args.task, args.split, limit=args.limit)
    hm = load_model(args.model, device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code)
    cfg = decoding_config(hm, sampling_config(args))
    summary, rows = evaluate(hm, task.problems, cfg, args.batch_size)
    if args.out:                     # written only once the evaluation succeeded: a failed run keeps the old file
        write_atomically(args.out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    summary = {"model": args.model, "task": args.task, "split": args.split, "hybrid": cfg.hybrid, **summary}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{args.model} on {args.task} ({args.split}, n={summary['n']}): accuracy {summary['accuracy']:.3f}, "
              f"format {summary['format_rate']:.3f}, length mean {summary['mean_len']:.1f} / median "
              f"{summary['median_len']:.0f}, hidden ratio {summary['hidden_ratio']:.4f}, "
              f"{summary['tokens_per_s']:.1f} tokens/s")
    return 0


def cmd_bench(args) -> int:
    import torch

    from . import bench
    dev = args.device
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()] if args.dtypes else [args.dtype]
    from .models import load_model, pick_device_dtype
    for d in dtypes:
        pick_device_dtype(dev, d)                              # a bad name fails before any work
    sizes = {"--batch": args.batch, "--prompt-len": args.prompt_len, "--new": args.new, "--repeats": args.repeats,
             "--steps": args.steps, "--prompts": args.prompts, "--group-size": args.group_size,
             "--lora-rank": args.lora_rank}
    bad = [f"{flag} must be >= 1, got {v}" for flag, v in sizes.items() if v < 1]
    if bad:
        raise UsageError(bad[0])
    if args.what == "train":
        rows = bench.bench_train(args.model or "default", steps=args.steps, new=args.new, device=dev,
                                 dtypes=dtypes, lora_rank=args.lora_rank, group_size=args.group_size,
                                 batch_prompts=args.prompts, unfolded=args.unfolded, task=args.task,
                                 stops=[x.strip() for x in args.stops.split(",") if x.strip()])
        grpo = {(r["dtype"], r["name"]): r["step_seconds"] for r in rows if r["name"].startswith("grpo")}
        for r in rows:
            r["vs_grpo"] = r["step_seconds"] / grpo[r["dtype"], r["name"].replace("hrpo", "grpo")]
    else:
        load = (lambda d: bench.shape_model(args.shape, dev, d)) if args.shape else \
            (lambda d: load_model(args.model or "default", device=dev, dtype=d))
        rows = bench.bench_rollout_dtypes(load, dtypes, batch=args.batch, prompt_len=args.prompt_len, new=args.new,
                                          repeats=args.repeats)
    shape = {"batch": args.batch, "prompt_len": args.prompt_len} if args.what == "rollout" else \
        {"prompts": args.prompts, "group_size": args.group_size, "lora_rank": args.lora_rank, "steps": args.steps}
    setup = {"bench": args.what, "model": args.shape or args.model or "default", **shape,
             "new": args.new, "threads": torch.get_num_threads(),
             "device": str(dev or ("cuda" if torch.cuda.is_available() else "cpu"))}
    if args.json:
        print(json.dumps({**setup, "rows": rows}))
        return 0
    print(" ".join(f"{k}={v}" for k, v in setup.items()))
    for r in rows:
        print("  " + "  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()))
    return 0


def cmd_export(args) -> int:
    from .checkpoint import export_checkpoint
    from .rundir import latest_checkpoint
    src = latest_checkpoint(args.src) or args.src
    print(f"exported {src} -> {export_checkpoint(src, args.dst, force=args.force)}")
    return 0


def add_sampling_args(p: argparse.ArgumentParser) -> None:
    d = RolloutConfig()
    p.add_argument("--max-new-tokens", type=int, default=d.max_new_tokens)
    p.add_argument("--temperature", type=float, default=d.temperature)
    p.add_argument("--top-k", type=int, default=d.top_k, help="0 = whole vocabulary")
    p.add_argument("--greedy", action="store_true", help="argmax decoding")
    p.add_argument("--no-hybrid", action="store_true", help="plain decoding, no latent mixing")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--stop", choices=STOP_RULES, default=d.stop,
                   help="answer: end once the answer line is complete ('####', the answer, a newline) or at EOS; "
                        "eos: the paper's, decode to EOS or --max-new-tokens and read the last '####'")


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="default",
                   help="model spec: default, tiny-random, HF name/dir, .gguf, checkpoint dir")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--dtype", default=None,
                   help="float32 | bfloat16 | float16 (default: bf16 on cuda and on CPUs with native bf16, else fp32)")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="allow model code from the model repo (off by default)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hrpo", description="HRPO studio: hybrid latent reasoning")
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="decode one prompt with hybrid latent reasoning")
    add_model_args(g)
    g.add_argument("--prompt", required=True, help="the question (wrapped in the chat template unless --raw)")
    add_sampling_args(g)
    g.add_argument("--raw", action="store_true", help="tokenize the prompt as is, without chat template")
    g.add_argument("--json", action="store_true",
                   help="print the trace file (hrpo/trace_file.py: every step, its latent's nearest tokens, the "
                        "tensors) instead of the text")
    g.add_argument("--save", metavar="FILE", help="also write the trace file to FILE (open it in the app: "
                                                  "`python app.py --trace FILE`, or Live's 'Open a trace')")
    g.set_defaults(func=cmd_generate)

    from .config import TrainConfig
    t = sub.add_parser("train", help="HRPO or GRPO training with LoRA (torchrun-ready)")
    config_flags(t, TrainConfig)
    t.add_argument("--config", help="JSON file of TrainConfig fields (flags override it)")
    t.add_argument("--resume", action="store_true", help="continue from the latest checkpoint under --out")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="accuracy, format rate, lengths and hidden ratio on a task")
    add_model_args(e)
    e.add_argument("--task", default="arith", help="arith[:level] | gsm8k | mgsm:<lang> | jsonl:PATH")
    e.add_argument("--split", default="test", help="train or test (held-out)")
    e.add_argument("--limit", type=int, default=100, help="number of problems")
    e.add_argument("--batch-size", type=int, default=16)
    e.add_argument("--json", action="store_true", help="print the summary as JSON")
    e.add_argument("--out", help="write one JSON line per problem to this file")
    add_sampling_args(e)
    e.set_defaults(func=cmd_eval)

    x = sub.add_parser("export", help="copy a checkpoint (or a run's latest) without trainer state, for shipping")
    x.add_argument("src", help="checkpoint directory, or a run directory (its latest checkpoint)")
    x.add_argument("dst", help="destination directory, e.g. checkpoints/my-model (new, empty, or with --force an "
                               "existing checkpoint; nothing else is ever overwritten)")
    x.add_argument("--force", action="store_true",
                   help="replace an existing checkpoint at dst (atomically: written beside it, then swapped in)")
    x.set_defaults(func=cmd_export)

    b = sub.add_parser("bench", help="speed: rollout tokens/s side by side, or HRPO vs GRPO step time")
    b.add_argument("what", choices=["rollout", "train"])
    b.add_argument("--model", default=None, help="model spec (default: the embedded model)")
    b.add_argument("--shape", default=None, help="random weights of a real shape: smollm2-135m, qwen2.5-1.5b, ...")
    b.add_argument("--device", default=None)
    b.add_argument("--dtype", default=None,
                   help="one dtype (default: bf16 on cuda and on CPUs with native bf16, else fp32)")
    b.add_argument("--dtypes", default=None,
                   help="comma-separated dtypes, e.g. float32,bfloat16: every contender runs in each, side by side "
                        "in one process (overrides --dtype)")
    b.add_argument("--batch", type=int, default=8)
    b.add_argument("--prompt-len", type=int, default=64)
    b.add_argument("--new", type=int, default=128, help="new tokens per row")
    b.add_argument("--repeats", type=int, default=1, help="timed runs per contender (best is kept)")
    b.add_argument("--steps", type=int, default=2, help="bench train: timed steps per mode")
    b.add_argument("--lora-rank", type=int, default=32, help="bench train: LoRA rank (alpha = 2 x rank)")
    b.add_argument("--prompts", type=int, default=2, help="bench train: prompts per step")
    b.add_argument("--group-size", type=int, default=4, help="bench train: completions per prompt (G)")
    b.add_argument("--task", default="arith", help="bench train: the training task")
    b.add_argument("--stops", default="answer",
                   help="bench train: comma-separated stop rules (answer,eos): each mode runs with each, side by side")
    b.add_argument("--unfolded", action="store_true",
                   help="bench train: also time each mode with fold_lora off (adapters as separate matmuls)")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_libraries()
    from .models import ModelSpecError
    try:
        return args.func(args)
    except (UsageError, ConfigError, ModelSpecError, TrainingError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

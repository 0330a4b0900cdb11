"""Command-line entry points: `python -m hrpo generate | train | eval | bench`.

generate: one prompt through the hybrid decoder; readable text (tokens shaded by hidden ratio on
a terminal) or, with --json, one JSON object with every step and the latent's nearest tokens.
Each command turns expected failures (bad spec, bad value, empty prompt) into one line on stderr
and exit code 2, never a stack trace.  Test: pytest tests/test_cli.py
"""
import argparse
import json
import os
import sys

from .config import ConfigError, RolloutConfig


class UsageError(ValueError):
    """A user mistake the CLI reports in one line."""


def quiet_libraries() -> None:
    """No progress bars or advisory warnings from transformers on the CLI."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def trace_json(hm, trace, model_spec: str, prompt: str) -> dict:
    """The `generate --json` object: completion, answer and every step with nearest latent tokens."""
    thinking = [s.index for s in trace.steps if s.thinking]
    near = hm.nearest(trace.latents[thinking], k=5) if trace.latents is not None and thinking else []
    near_by_step = dict(zip(thinking, near))
    steps = [{"index": s.index, "token": s.token, "token_id": s.token_id, "thinking": s.thinking,
              "gate_a": s.gate_a, "hidden_ratio": s.hidden_ratio, "logprob": s.logprob, "entropy": s.entropy,
              "nearest": [[tok, cos] for tok, cos in near_by_step.get(s.index, [])]} for s in trace.steps]
    return {"model": model_spec, "prompt": prompt, "completion": trace.text, "answer": trace.answer,
            "num_tokens": len(trace.token_ids), "hybrid": trace.hybrid, "token_ids": trace.token_ids,
            "steps": steps}


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


def cmd_generate(args) -> int:
    from .models import load_model
    from .rollout import Decoder
    if not args.prompt.strip():
        raise UsageError("the prompt is empty")
    cfg = RolloutConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                        greedy=args.greedy, hybrid=not args.no_hybrid, seed=args.seed)
    hm = load_model(args.model, device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code)
    dec = Decoder(hm, [args.prompt], cfg, raw=args.raw, keep_latents=args.json)
    trace = dec.run()[0]
    if args.json:
        print(json.dumps(trace_json(hm, trace, args.model or "default", args.prompt), ensure_ascii=False))
        return 0
    print(shade(trace, sys.stdout.isatty()))
    thinking = sum(s.thinking for s in trace.steps)
    mean_hr = sum(s.hidden_ratio for s in trace.steps) / max(1, len(trace.steps))
    print(f"\n-- answer: {trace.answer}  | {len(trace.token_ids)} tokens ({thinking} thinking), "
          f"mean hidden ratio {mean_hr:.4f}, {dec.tokens_per_s:.1f} tokens/s, hybrid={'on' if cfg.hybrid else 'off'}")
    return 0


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="default", help="model spec: default, tiny-random, HF name/dir, .gguf, checkpoint dir")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--dtype", default=None, help="float32 | bfloat16 | float16 (default: bf16 on cuda, fp32 on cpu)")
    p.add_argument("--trust-remote-code", action="store_true", help="allow model code from the model repo (off by default)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hrpo", description="HRPO studio: hybrid latent reasoning")
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="decode one prompt with hybrid latent reasoning")
    add_model_args(g)
    d = RolloutConfig()
    g.add_argument("--prompt", required=True, help="the question (wrapped in the chat template unless --raw)")
    g.add_argument("--max-new-tokens", type=int, default=d.max_new_tokens)
    g.add_argument("--temperature", type=float, default=d.temperature)
    g.add_argument("--top-k", type=int, default=d.top_k, help="0 = whole vocabulary")
    g.add_argument("--greedy", action="store_true", help="argmax decoding")
    g.add_argument("--no-hybrid", action="store_true", help="plain decoding, no latent mixing")
    g.add_argument("--seed", type=int, default=d.seed)
    g.add_argument("--raw", action="store_true", help="tokenize the prompt as is, without chat template")
    g.add_argument("--json", action="store_true", help="print one JSON object with every step")
    g.set_defaults(func=cmd_generate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_libraries()
    from .models import ModelSpecError
    try:
        return args.func(args)
    except (UsageError, ConfigError, ModelSpecError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

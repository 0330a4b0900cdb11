"""logprob_drift of a few training steps in a given dtype (issue 10: bf16 on CPU must stay on-policy).

Prints one JSON line per step: max and median |teacher-forced - rollout| log-prob and the step's seconds.
--attn forces an attention implementation after loading (sdpa reproduces the drift before the fix).
Run: python -m bench.bf16_drift --dtype bfloat16 --mode hrpo [--attn sdpa]
"""
import argparse
import json
import shutil
import tempfile

from hrpo.config import TrainConfig
from hrpo.trainer import Trainer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--mode", default="hrpo", choices=["hrpo", "grpo"])
    p.add_argument("--attn", default=None, help="eager | sdpa (default: what hrpo.models picks)")
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--prompts", type=int, default=2)
    p.add_argument("--group-size", type=int, default=8)
    p.add_argument("--new", type=int, default=64)
    args = p.parse_args()
    out = tempfile.mkdtemp(prefix="bf16-drift-")
    try:
        cfg = TrainConfig(mode=args.mode, out=out, steps=args.steps, group_size=args.group_size,
                          batch_prompts=args.prompts, max_new_tokens=args.new, lora_rank=8, lora_alpha=16, lr=1e-4,
                          gate_lr=1e-3, lambda_lr=1e-2, dtype=args.dtype, device="cpu", save_every=1000)
        trainer = Trainer(cfg)
        if args.attn:
            trainer.hm.model.get_base_model().set_attn_implementation(args.attn)
        for step in range(args.steps):
            m = trainer.train_step(step)
            print(json.dumps({"dtype": args.dtype, "mode": args.mode, "attn": args.attn or "default", "step": m["step"],
                              "drift_max": m["logprob_drift"], "drift_median": m["logprob_drift_median"],
                              "completion_len_mean": m["completion_len_mean"], "step_seconds": m["step_seconds"]}),
                  flush=True)
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()

"""bf16 on CPU: transformers' eager attention vs hrpo's grouped eager attention, side by side in one process.

Times, on the embedded model in bf16 with LoRA rank 8 folded (the training default), the hybrid rollout
of the training shape (4 prompts x 8, 64 new tokens) and of `bench rollout` (batch 8, prompt 64, 128 new),
plus one loss pass (forward + backward) over the training rollout; each contender once per round, best
of the rounds.  Both implementations give the same logits bit for bit (tests/test_fidelity.py -k grouped),
so the rollouts are the same tokens.  Prints one JSON object.
    python -m bench.bench_attention [--rounds 2]
"""
import argparse
import dataclasses
import json
import shutil
import time

import torch

from hrpo.bench import synth_prompts
from hrpo.config import RolloutConfig, TrainConfig
from hrpo.cpu_precision import GROUPED_EAGER
from hrpo.rollout import Decoder
from hrpo.trainer import Trainer

IMPLS = ("eager", GROUPED_EAGER)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default="/tmp/hrpo-bench-attention")
    args = ap.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    cfg = TrainConfig(model="default", mode="hrpo", steps=1, group_size=8, batch_prompts=4, max_new_tokens=64,
                      out=args.out, seed=0, dtype="bfloat16", lora_rank=8, lora_alpha=16, lr=1e-5)
    trainer = Trainer(cfg)
    hm = trainer.hm
    train_prompts = [hm.encode(p.question) for p in trainer.task.problems[:4] for _ in range(8)]
    endless = dataclasses.replace(hm, eos_ids=frozenset())     # bench rollout's shape writes every token
    bench_prompts = synth_prompts(hm, 8, 64)
    bench_cfg = RolloutConfig(max_new_tokens=128, temperature=0.5, top_k=50)
    mb, _ = trainer._rollouts(0, 0, trainer.task.problems[:4])

    def train_rollout():
        return Decoder(hm, train_prompts, cfg.rollout_config(0)).run() and None

    def bench_rollout():
        return Decoder(endless, bench_prompts, bench_cfg).run() and None

    def loss_pass():
        logp = trainer.ddp(mb["batch"])
        logp[mb["batch"].valid].sum().backward()
        trainer.optimizer.zero_grad(set_to_none=True)

    jobs = {"rollout_4x8_new64": train_rollout, "rollout_b8_new128": bench_rollout, "loss_pass_4x8": loss_pass}
    best = {(job, impl): float("inf") for job in jobs for impl in IMPLS}
    with trainer._folded():
        for r in range(args.rounds + 1):                            # round 0 warms up
            for job, fn in jobs.items():
                for impl in IMPLS:
                    hm.model.set_attn_implementation(impl)
                    t0 = time.perf_counter()
                    fn()
                    if r:
                        best[job, impl] = min(best[job, impl], time.perf_counter() - t0)
    hm.model.set_attn_implementation(GROUPED_EAGER)
    rows = [{"job": job, "eager_s": best[job, "eager"], "grouped_s": best[job, GROUPED_EAGER],
             "speedup": best[job, "eager"] / best[job, GROUPED_EAGER]} for job in jobs]
    print(json.dumps({"bench": "attention", "dtype": "bfloat16", "threads": torch.get_num_threads(),
                      "completion_len_mean": mb["batch"].valid.sum().item() / len(train_prompts), "rows": rows}))
    shutil.rmtree(args.out, ignore_errors=True)


if __name__ == "__main__":
    main()

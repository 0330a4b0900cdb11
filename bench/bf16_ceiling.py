"""How far bf16 can speed up a training step on this CPU (docs/PERFORMANCE.md).

  gemm     GEMM throughput (GFLOP/s) per dtype at the model's shapes and a large square one: the ceiling
           of any bf16/fp32 ratio for matrix products on this CPU.
  profile  the two halves of an HRPO train step (4 x 8 arith rollout, 64 new tokens; the teacher-forced
           reference pass + policy forward/backward on one batch, the same for both dtypes): wall times of
           --rounds runs, dtypes alternated, then one run under the torch profiler per dtype, its operator
           time split into matrix products (aten::mm) and the rest.
Every row is one JSON line.
    python -m bench.bf16_ceiling gemm
    python -m bench.bf16_ceiling profile --top 12
"""
import argparse
import json
import tempfile
import time

import torch
from torch.profiler import ProfilerActivity, profile

DTYPES = ("float32", "bfloat16")
SHAPES = [(2048, 2048, 2048), (4096, 576, 1536), (32, 576, 1536), (32, 576, 49152), (1024, 576, 49152)]


def gflops(m: int, k: int, n: int, dtype: torch.dtype) -> float:
    a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
    reps = max(3, int(2e10 / (2 * m * k * n)))
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = min(best, (time.perf_counter() - start) / reps)
    return 2 * m * k * n / best / 1e9


def gemm() -> None:
    for shape in SHAPES:
        f32, bf16 = (gflops(*shape, getattr(torch, d)) for d in DTYPES)
        print(json.dumps({"shape": shape, "float32_gflops": round(f32, 1), "bfloat16_gflops": round(bf16, 1),
                          "ratio": round(bf16 / f32, 2)}), flush=True)


def wall(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def split(name: str, dtype: str, fn, walls: list, top: int, **extra) -> None:
    """One row: the unprofiled wall times, then fn's operator time under the profiler, split."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    ops = {e.key: e.self_cpu_time_total / 1e3 for e in prof.key_averages()}
    total, mm = sum(ops.values()), ops.get("aten::mm", 0.0)
    biggest = sorted(((k, round(v, 1)) for k, v in ops.items() if k != "aten::mm"), key=lambda kv: -kv[1])[:top]
    print(json.dumps({"name": name, "dtype": dtype, "wall_s": [round(w, 2) for w in walls], "op_ms": round(total),
                      "mm_ms": round(mm), "other_ms": round(total - mm), **extra, "other_top": biggest}), flush=True)


def profile_step(top: int, rounds: int) -> None:
    from hrpo.config import TrainConfig
    from hrpo.loss import policy_loss
    from hrpo.rollout import Decoder
    from hrpo.teacher_forcing import completion_logprobs
    from hrpo.trainer import Trainer

    def trainer(dtype):
        return Trainer(TrainConfig(model="default", task="arith", steps=5, group_size=8, batch_prompts=4,
                                   max_new_tokens=64, lora_rank=8, dtype=dtype, out=tempfile.mkdtemp()))

    trainers = {d: trainer(d) for d in DTYPES}
    problems = trainers["float32"].task.problems[:4]
    mb, _ = trainers["float32"]._rollouts(0, 0, problems)          # one batch, teacher-forced by both dtypes

    def loss_pass(t):
        hm, batch = t.hm, mb["batch"]
        with torch.no_grad(), hm.model.disable_adapter():
            ref = completion_logprobs(hm.model, hm.embeddings, batch, t.cfg.top_k, t.cfg.temperature, gate=None)
        with t._folded():
            logp = t.ddp(batch)
            loss, _ = policy_loss(logp, logp.detach(), ref, mb["adv"], batch.valid, t.cfg.beta, t.cfg.epsilon)
            t.acc.backward(loss)
        t.optimizer.zero_grad(set_to_none=True)

    def decode(t):
        prompts = [t.hm.encode(p.question) for p in problems for _ in range(8)]
        with torch.no_grad(), t._folded():
            return Decoder(t.hm, prompts, t.cfg.rollout_config(1)).run()         # seeded: the same tokens each time

    tokens = {d: sum(len(tr.token_ids) for tr in decode(t)) for d, t in trainers.items()}    # and warm-ups
    for t in trainers.values():
        loss_pass(t)
    walls = {(d, part): [] for d in DTYPES for part in ("rollout", "loss_pass")}
    for _ in range(rounds):                  # dtypes alternated: a slow spell of the machine hits both
        for d, t in trainers.items():
            walls[d, "rollout"].append(wall(lambda: decode(t)))
            walls[d, "loss_pass"].append(wall(lambda: loss_pass(t)))
    for d, t in trainers.items():
        split("rollout", d, lambda: decode(t), walls[d, "rollout"], top, tokens=tokens[d])
        split("loss_pass", d, lambda: loss_pass(t), walls[d, "loss_pass"], top, positions=int(mb["batch"].valid.sum()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["gemm", "profile"])
    ap.add_argument("--top", type=int, default=12, help="largest non-mm operators listed per row")
    ap.add_argument("--rounds", type=int, default=3, help="unprofiled timings per dtype, alternated")
    args = ap.parse_args()
    gemm() if args.what == "gemm" else profile_step(args.top, args.rounds)


if __name__ == "__main__":
    main()

"""Issue 29, part 1: what moves W_r?  The RL gradient on the gate's W_r against weight decay's pull per update.

In the shipped HRPO run's setting (checkpoints/smollm2-arith-hrpo/config.json: AdamW, gate lr 1e-3, weight
decay 0.1 on W_r, gradient-norm clip 0.1 over all trainable parameters) one update moves W_r by
    decay:  lr * wd * W_r                          (decoupled, towards 0)
    Adam:   lr * m_hat / (sqrt(v_hat) + eps)       (m, v: moving averages of the clipped gradient)
Both scale with lr, so their ratio does not depend on where the schedule is.  The script takes real
training steps' gradients (the trainer's own rollouts, rewards, teacher forcing and loss, same prompts and
sampling seeds as the run) at two points, without updating the weights:
  init     the run's start (seed-0 LoRA and gate, as the shipped run began)
  shipped  the shipped checkpoint's weights (step 300)
and reports per point: the raw and clipped gradient norm on W_r (and on W_i, b_r, Lambda, LoRA), the
per-element size of W_r's clipped gradient against Adam's eps (1e-8), the Adam step per unit lr estimated
from the K gradients (m ~ their mean, v ~ their mean square), the decay step per unit lr (wd * ||W_r||),
and the per-token spread of r = sigmoid(W_r e + b_r) over the vocabulary (what makes the gate selective).
It also compares the shipped W_r with the init: how far it moved, and how much of that the decay alone
(the product of (1 - lr_t * wd) over the run's 300 updates) accounts for.

    nice -n 19 .venv/bin/python -m studies.gate_gradients --steps 4 --out runs/gate-gradients.json
"""
import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def gradients(trainer, steps: list[int]) -> list[dict]:
    """Per step: the raw gradient of each named tensor (the trainer's loss, no update) and the total norm."""
    from hrpo.loss import policy_loss, tis_weights
    from hrpo.trainer import problems_for_step
    cfg, gate = trainer.cfg, trainer.hm.gate
    named = {"W_r": gate.W_r.weight, "b_r": gate.W_r.bias, "W_i": gate.W_i.weight, "b_i": gate.W_i.bias,
             "Lambda": gate.Lambda}
    out = []
    for step in steps:
        problems = problems_for_step(trainer.task.problems, step, cfg.batch_prompts, cfg.seed)
        mb, st = trainer._rollouts(step, 0, problems)
        with trainer._folded():
            logp = trainer.ddp(mb["batch"])
            old = logp.detach()
            tis = tis_weights(old, mb["batch"].logprobs, cfg.tis_cap)
            loss, _ = policy_loss(logp, old, mb["ref"], mb["adv"], mb["batch"].valid, cfg.beta, cfg.epsilon,
                                  is_weight=tis)
            loss.backward()
        grads = {k: (p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)) for k, p in named.items()}
        lora = [p.grad for g in trainer.groups if g["name"].startswith("lora")
                for p in g["params"] if p.grad is not None]
        sq = lambda ts: sum(float(t.float().pow(2).sum()) for t in ts)  # noqa: E731
        total = math.sqrt(sq(lora) + sq(grads.values()))
        out.append({"step": step, "grads": grads, "total_norm": total,
                    "lora_norm": math.sqrt(sum(float(g.float().pow(2).sum()) for g in lora)),
                    "reward_mean": st["reward_mean"], "adv_nonzero": float((mb["adv"] != 0).float().mean())})
        trainer.optimizer.zero_grad(set_to_none=True)
        print(f"  step {step}: total grad norm {total:.3g}, W_r {float(grads['W_r'].norm()):.3g}, "
              f"reward {st['reward_mean']:.2f}", file=sys.stderr, flush=True)
    return out


def r_spread(gate, E: torch.Tensor) -> dict:
    """Spread over the vocabulary of each token's r = sigmoid(W_r e + b_r) (mean over H) and of W_r e."""
    with torch.no_grad():
        e = E.float()
        z = e @ gate.W_r.weight.T + gate.W_r.bias                # (V, H)
        r = torch.sigmoid(z).mean(-1)                            # (V,)
        q = torch.quantile(r[torch.randperm(len(r), generator=torch.Generator().manual_seed(0))[:20000]].double(),
                           torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64))
    return {"r_p10": q[0].item(), "r_p50": q[1].item(), "r_p90": q[2].item(),
            "Wr_e_std_over_tokens": float((e @ gate.W_r.weight.T).std(0).mean()),
            "embedding_norm_mean": float(e.norm(dim=-1).mean())}


def summarise(gate, cfg, records: list[dict], lr_peak: float) -> dict:
    wd_gate = cfg.weight_decay if cfg.decay_gate else 0.0
    if getattr(cfg, "gate_weight_decay", -1.0) >= 0:
        wd_gate = cfg.gate_weight_decay
    eps, b1, b2 = 1e-8, cfg.adam_beta1, cfg.adam_beta2
    W = gate.W_r.weight.detach()
    rows = {}
    for k in ("W_r", "b_r", "W_i", "Lambda"):
        raw = [float(r["grads"][k].norm()) for r in records]
        coef = [min(1.0, cfg.max_grad_norm / (r["total_norm"] + 1e-6)) for r in records]
        clipped = [torch.as_tensor(r["grads"][k]) * c for r, c in zip(records, coef)]
        m = torch.stack(clipped).mean(0)
        v = torch.stack(clipped).pow(2).mean(0)
        adam = m / (v.sqrt() + eps)                              # the steady-state Adam direction, per unit lr
        adam_no_eps = m / v.sqrt().clamp_min(1e-30)
        rows[k] = {"grad_norm_raw_mean": sum(raw) / len(raw),
                   "grad_norm_clipped_mean": sum(float(c.norm()) for c in clipped) / len(clipped),
                   "clip_coef_mean": sum(coef) / len(coef),
                   "grad_abs_median_clipped": float(torch.stack(clipped).abs().median()),
                   "share_below_eps": float((v.sqrt() < eps).float().mean()),
                   "sign_consistency": float(m.norm() / (v.sqrt().norm() + 1e-30)),
                   "adam_step_per_lr": float(adam.norm()),
                   "adam_step_per_lr_without_eps": float(adam_no_eps.norm()),
                   "first_adam_step_per_lr": float((clipped[0] / (clipped[0].abs() + eps)).norm())}
    decay = wd_gate * float(W.norm())
    rows["W_r"].update({"weight_norm": float(W.norm()), "decay_step_per_lr": decay,
                        "adam_over_decay": rows["W_r"]["adam_step_per_lr"] / decay if decay else None,
                        "adam_step_at_peak_lr": lr_peak * rows["W_r"]["adam_step_per_lr"],
                        "decay_step_at_peak_lr": lr_peak * decay,
                        "note": "Adam m, v estimated from the K clipped gradients (1 - beta1 = 0.1 and "
                                "1 - beta2 = 0.01 weight many more in the run: the estimate is of the same order)"})
    rows["steps"] = [{"step": r["step"], "total_norm": r["total_norm"], "lora_norm": r["lora_norm"],
                      "W_r_norm": float(r["grads"]["W_r"].norm()), "reward_mean": r["reward_mean"],
                      "adv_nonzero": r["adv_nonzero"]} for r in records]
    rows["adam_betas"], rows["adam_eps"], rows["weight_decay_W_r"] = [b1, b2], eps, wd_gate
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default="checkpoints/smollm2-arith-hrpo")
    ap.add_argument("--steps", type=int, default=4, help="training steps' gradients per point")
    ap.add_argument("--out", default="runs/gate-gradients.json")
    args = ap.parse_args()
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    from hrpo import checkpoint as ckpt
    from hrpo.config import TrainConfig
    from hrpo.trainer import Trainer, cosine_with_warmup
    t0 = time.time()
    meta = ckpt.read_config(args.checkpoint)
    train = dict(meta["train"])
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig.from_dict({**train, "out": str(Path(tmp) / "run"), "device": "cpu"})
        trainer = Trainer(cfg)                                   # seed-0 LoRA and gate: the run's start
        gate, E = trainer.hm.gate, trainer.hm.embeddings
        W0 = gate.W_r.weight.detach().clone()
        result = {"checkpoint": args.checkpoint, "date": time.strftime("%F"), "config": train, "points": {}}
        print("init: gradients at the run's start", file=sys.stderr, flush=True)
        recs = gradients(trainer, list(range(args.steps)))
        result["points"]["init"] = {**summarise(gate, cfg, recs, cfg.gate_lr), **r_spread(gate, E)}
        print("shipped: gradients at the shipped checkpoint", file=sys.stderr, flush=True)
        adapter = load_file(str(Path(args.checkpoint) / "adapter" / "adapter_model.safetensors"))
        missing = set_peft_model_state_dict(trainer.hm.model, adapter)
        ckpt.load_gate_into(gate, args.checkpoint)
        gate.float()
        recs = gradients(trainer, list(range(meta["step"], meta["step"] + args.steps)))
        result["points"]["shipped"] = {**summarise(gate, cfg, recs, cfg.gate_lr), **r_spread(gate, E)}
        result["adapter_unexpected_keys"] = len(getattr(missing, "unexpected_keys", []) or [])
        # the trajectory: the shipped W_r against the init shrunk by the decay of every update of the run
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.gate_lr)
        total = cfg.steps * cfg.num_iterations
        sched = cosine_with_warmup(opt, int(cfg.warmup_ratio * total), total)
        shrink = 1.0
        wd = result["points"]["init"]["weight_decay_W_r"]
        for _ in range(total):
            shrink *= 1.0 - opt.param_groups[0]["lr"] * wd
            opt.step()
            sched.step()
        W1 = gate.W_r.weight.detach()
        decayed = W0 * shrink
        cos = float(torch.nn.functional.cosine_similarity(W0.flatten(), W1.flatten(), dim=0))
        result["trajectory"] = {"W_r_norm_init": float(W0.norm()), "W_r_norm_shipped": float(W1.norm()),
                                "decay_only_shrink_factor": shrink, "W_r_norm_decay_only": float(decayed.norm()),
                                "moved_by_gradients_norm": float((W1 - decayed).norm()),
                                "cosine_init_shipped": cos,
                                "note": "cosine ~1 means the shipped W_r is still the (seed-0) init"}
    result["seconds"] = time.time() - t0
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1), encoding="utf-8")
    for point, d in result["points"].items():
        w = d["W_r"]
        print(f"{point}: ||g_Wr|| raw {w['grad_norm_raw_mean']:.3g}, clipped {w['grad_norm_clipped_mean']:.3g} "
              f"(clip x{w['clip_coef_mean']:.3g}); |g| median {w['grad_abs_median_clipped']:.3g} vs eps 1e-8 "
              f"({w['share_below_eps']:.0%} of elements below); Adam step/lr {w['adam_step_per_lr']:.3g} "
              f"(without eps {w['adam_step_per_lr_without_eps']:.3g}) vs decay step/lr {w['decay_step_per_lr']:.3g} "
              f"-> ratio {w['adam_over_decay']:.3g}; r over vocab p10/p50/p90 "
              f"{d['r_p10']:.4f}/{d['r_p50']:.4f}/{d['r_p90']:.4f}")
    print("trajectory:", json.dumps(result["trajectory"]))
    print("wrote", args.out)


if __name__ == "__main__":
    main()

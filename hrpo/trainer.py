"""The HRPO / GRPO training loop on accelerate, with LoRA through peft (docs/DESIGN.md section 1).

Per step, on each process: sample prompts (seeded by step, so a resumed run sees the same ones),
roll out G completions per prompt with the current policy (hybrid in HRPO mode, keeping latents),
score them, compute group-normalised advantages, recompute log-probs by teacher forcing through
the *trainable* gate with the stored latents (checking `logprob_drift` against the sampling
log-probs), take reference log-probs with the adapter disabled on plain tokens, and minimise the
loss of hrpo.loss.policy_loss.  Optimizer: AdamW with four groups (LoRA matrices with weight
decay, other LoRA params without, gate linears, Lambda), cosine schedule with warm-up, grad clip.
Runs as one process or data-parallel under `torchrun --nproc_per_node N -m hrpo train ...`.
Run directory rules (hrpo/rundir.py): one trainer per --out (an OS lock), an existing run is only continued
with --resume, a resume starts from the newest checkpoint that loads and cuts metrics back to it.
Test: pytest tests/test_trainer.py tests/test_reliability_run.py
"""
import contextlib
import copy
import hashlib
import json
import math
import random
import time
from pathlib import Path

import torch
from torch import nn

from . import checkpoint as ckpt
from . import rundir
from .config import RolloutConfig, TrainConfig, TrainingError
from .cpu_precision import folded_lora
from .loss import group_advantages, policy_loss, tis_weights
from .models import EMULATED_BF16, EMULATED_BF16_COST, attach_adapter, cpu_has_native_bf16, load_model
from .rewards import apply_reward, get_reward, score
from .selectivity import SELECTIVITY, nan_for_none, none_for_nan, selectivity, thinking_records
from .static_decoder import make_decoder, static_wanted
from .tasks import held_out_split, load_task
from .teacher_forcing import completion_logprobs, pack

# metrics.jsonl, one line per step (the app and scripts/plot_dynamics.py read these names):
#   accuracy                share of completions correct and formatted (one '####'): the name means this in
#                           metrics.jsonl, eval.jsonl, `hrpo eval` and the app (rewards.score)
#   correct_rate            share correct in any format; format_rate: share formatted
#                           (metrics.jsonl from before 2026-12-07 has no correct_rate, and its accuracy is that)
#   gate_a_mean             mean of a over the step's thinking tokens and hidden dims ("embedding ratio")
#   hidden_ratio_mean       mean over thinking tokens of the per-token sqrt(1 - a^2) (a averaged over dims
#                           first: the per-token figure our views show)
#   hidden_ratio_official   sqrt(1 - gate_a_mean^2), what the authors' code logs as the hidden ratio
#   hidden_ratio_p10/p50/p90  spread of the per-token sqrt(1 - a^2) over the step's thinking tokens
#   (under DDP each is the mean over ranks; all are 0 (a = 1) in GRPO runs and steps without thinking)
#   hidden_ratio_p90_p10, hidden_ratio_digit/_operator/_word/_punct, hidden_ratio_line_first/_line_later
#                           gate selectivity over the step's thinking tokens (hrpo.selectivity.SELECTIVITY:
#                           p90/p10 of the per-token hidden ratio, its mean by token type and by position in
#                           the line); null where the step had no such token (and the ratio in GRPO runs)
#   logprob_drift           max |teacher-forced - sampling| log-prob over the step (docs/DESIGN.md 1.6 self-check)
#   logprob_drift_median    median of the same over the step's tokens (the loss corrects what remains by
#                           truncated importance sampling, TrainConfig.tis_cap)
#   processes               data-parallel processes that made the step (torchrun --nproc_per_node)
GATE_STATS = ["gate_a_mean", "hidden_ratio_mean", "hidden_ratio_official", "hidden_ratio_p10",
              "hidden_ratio_p50", "hidden_ratio_p90"]
METRICS = ["step", "reward_mean", "accuracy", "correct_rate", "format_rate", "completion_len_mean", *GATE_STATS,
           "kl", "loss", "grad_norm", "lr", "logprob_drift", "logprob_drift_median", "rollout_tokens_per_s",
           "step_seconds", *SELECTIVITY]


def gate_stats(gate_a: list[float], hidden: list[float]) -> dict:
    """GATE_STATS from the per-token mean a and per-token sqrt(1 - a^2) of thinking tokens."""
    if not gate_a:
        return {"gate_a_mean": 1.0, **{k: 0.0 for k in GATE_STATS[1:]}}
    a_mean = sum(gate_a) / len(gate_a)
    q = torch.quantile(torch.tensor(hidden, dtype=torch.float64), torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64))
    return {"gate_a_mean": a_mean, "hidden_ratio_mean": sum(hidden) / len(hidden),
            "hidden_ratio_official": math.sqrt(max(0.0, 1.0 - a_mean * a_mean)),
            "hidden_ratio_p10": q[0].item(), "hidden_ratio_p50": q[1].item(), "hidden_ratio_p90": q[2].item()}


def derived_seed(*parts) -> int:
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:4], "little")


def problems_for_step(problems: list, step: int, n: int, seed: int) -> list:
    """The n problems of a step: a seeded shuffle per epoch, without replacement within an epoch.

    A pure function of (step, seed), so a resumed run trains on exactly the prompts it would have seen.
    """
    orders, out = {}, []
    for i in range(step * n, step * n + n):
        epoch, pos = divmod(i, len(problems))
        if epoch not in orders:
            orders[epoch] = list(range(len(problems)))
            random.Random(derived_seed(seed, "epoch", epoch)).shuffle(orders[epoch])
        out.append(problems[orders[epoch][pos]])
    return out


class Policy(nn.Module):
    """The LoRA model and the gate as one module (one DDP unit): batch -> (B, T) log-probs."""

    def __init__(self, model, gate, hybrid: bool, top_k: int, temperature: float):
        super().__init__()
        self.model, self.gate = model, gate
        self.hybrid, self.top_k, self.temperature = hybrid, top_k, temperature

    def forward(self, batch):
        E = self.model.get_input_embeddings().weight
        return completion_logprobs(self.model, E, batch, self.top_k, self.temperature,
                                   gate=self.gate if self.hybrid else None)


def param_groups(model, gate, cfg: TrainConfig, hybrid: bool) -> list[dict]:
    lora = [p for p in model.parameters() if p.requires_grad]
    groups = [{"name": "lora", "params": [p for p in lora if p.ndim >= 2], "lr": cfg.lr,
               "weight_decay": cfg.weight_decay},
              {"name": "lora_no_decay", "params": [p for p in lora if p.ndim < 2], "lr": cfg.lr, "weight_decay": 0.0}]
    if hybrid:
        wd = cfg.weight_decay if cfg.decay_gate else 0.0
        gate_wd = wd if cfg.gate_weight_decay < 0 else cfg.gate_weight_decay      # -1: Lambda's decay
        groups += [{"name": "gate", "params": [*gate.W_r.parameters(), *gate.W_i.parameters()],
                    "lr": cfg.gate_lr, "weight_decay": gate_wd},
                   {"name": "lambda", "params": [gate.Lambda], "lr": cfg.lambda_lr, "weight_decay": wd}]
    return [g for g in groups if g["params"]]


def cosine_with_warmup(optimizer, warmup: int, total: int):
    def factor(update: int) -> float:
        if update < warmup:
            return (update + 1) / (warmup + 1)
        progress = (update - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# fields a resumed run must share with its checkpoint (they fix the shapes or the meaning of the weights,
# or, for task, the prompts each step trains on: another task would silently make a different run)
SHAPE_FIELDS = ["mode", "lora_rank", "lora_alpha", "lora_targets", "c", "task"]


class Trainer:
    """Build with a TrainConfig; `train()` runs to cfg.steps, calling `callback(metrics)` each step.

    `reward_fn(completions, answers, *, kinds, questions) -> list[float]` (a TRL-style reward function,
    hrpo/rewards.py) scores each completion; default `get_reward(cfg.reward)`, the task's own check.
    `accuracy`, `correct_rate` and `format_rate` are logged from `rewards.score` whatever the reward."""

    def __init__(self, cfg: TrainConfig, callback=None, resume: bool = False, should_stop=None, reward_fn=None):
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs
        self.cfg, self.callback, self.should_stop = cfg, callback, should_stop or (lambda: False)
        self.reward_fn = reward_fn if reward_fn is not None else get_reward(cfg.reward)
        self.hybrid = cfg.mode == "hrpo"
        self.out = Path(cfg.out)
        rundir.check_output_dir(self.out)
        # cpu=True also when no device is named and there is no CUDA: else accelerate does not join torchrun's
        # process group on a CPU machine, and every rank would train alone as its own "main" process
        on_cpu = cfg.device == "cpu" or (cfg.device is None and not torch.cuda.is_available())
        self.acc = Accelerator(cpu=on_cpu,
                               kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
        main = self.acc.is_main_process
        if main:
            rundir.lock_run_dir(self.out)            # one trainer per run directory, for this process's life
        if not resume and rundir.has_run(self.out):
            raise TrainingError(f"{self.out} already holds a run; pass --resume to continue it, or choose a new --out")
        self.task = load_task(cfg.task, "train", seed=cfg.seed)
        if resume and main:
            rundir.remove_partial(self.out)
        resume_from = self._resume_point() if resume else None
        self.hm, self.start_step, state = self._build(resume_from)
        if resume and main:                         # metrics logged past the checkpoint are redone: drop them
            for name in ("metrics.jsonl", "eval.jsonl"):
                rundir.cut_jsonl(self.out / name, self.start_step)
        self.policy = Policy(self.hm.model, self.hm.gate, self.hybrid, cfg.top_k, cfg.temperature)
        self.groups = param_groups(self.hm.model, self.hm.gate, cfg, self.hybrid)
        self.params = [p for g in self.groups for p in g["params"]]
        self.optimizer = torch.optim.AdamW(self.groups, betas=(cfg.adam_beta1, cfg.adam_beta2))
        total = cfg.steps * cfg.num_iterations
        self.scheduler = cosine_with_warmup(self.optimizer, int(cfg.warmup_ratio * total), total)
        if state is not None:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            ckpt.set_rng_state(state["rng"])
        self.ddp = self.acc.prepare(self.policy)
        self.tb = self._tensorboard()

    def _resume_point(self):
        """The newest checkpoint that loads (saying which damaged ones it skipped), checked against cfg."""
        say = print if self.acc.is_main_process else (lambda *_: None)
        path = rundir.resumable_checkpoint(self.out, self.hybrid, say=say)
        if path is None:
            say(f"no checkpoint in {self.out}, starting fresh")
            return None
        if self.acc.is_main_process:             # damaged newer ones move aside (kept for inspection)
            rundir.set_aside_newer(self.out, path)
        meta = ckpt.read_config(path)
        old = {**meta["train"], "mode": meta["mode"]}
        diff = [f"{k}={getattr(self.cfg, k)!r} (the run has {old[k]!r})" for k in SHAPE_FIELDS
                if k in old and old[k] != getattr(self.cfg, k)]
        if diff:
            raise TrainingError(f"cannot resume {path} with {', '.join(diff)}: these fields fix the trained "
                                "weights or the training data; resume with the run's values or start a new --out")
        return path

    def _build(self, resume_from):
        from peft import LoraConfig, get_peft_model
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        device = "cpu" if self.acc.device.type == "cpu" else str(self.acc.device)
        if device == "cpu" and cfg.dtype in ("bfloat16", "bf16") and not cpu_has_native_bf16() \
                and not cfg.emulated_bf16:
            raise TrainingError(EMULATED_BF16.format(cost=EMULATED_BF16_COST) + "; training refuses it unless "
                                "asked twice: --dtype bfloat16 --emulated-bf16")
        hm = load_model(cfg.model, device=device, dtype=cfg.dtype, gate_config=cfg.gate_config)
        hm.prompt_format = cfg.prompt_format           # rollouts, evaluation and the saved checkpoint use it
        for p in hm.model.parameters():
            p.requires_grad_(False)
        state, step = None, 0
        if resume_from is not None:
            meta = ckpt.read_config(resume_from)
            ckpt.check_base(meta, hm, resume_from)
            attach_adapter(hm, resume_from, trainable=True)
            if self.hybrid:
                ckpt.load_gate_into(hm.gate, resume_from)
            state, step = ckpt.load_trainer_state(resume_from), meta["step"]
            if state is None:
                raise ckpt.CheckpointError(f"{resume_from}: no trainer_state.pt, cannot resume from it")
        else:
            lora = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, target_modules=list(cfg.lora_targets),
                              lora_dropout=0.0, bias="none", task_type="CAUSAL_LM")
            hm.model = get_peft_model(hm.model, lora)
        hm.gate.requires_grad_(self.hybrid)
        hm.gate.float()
        return hm, step, state

    def _tensorboard(self):
        if not (self.cfg.tensorboard and self.acc.is_main_process):
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            print("tensorboard is not installed; logging to metrics.jsonl only")
            return None
        return SummaryWriter(str(self.out / "tensorboard"))

    def _rollouts(self, step: int, micro: int, problems):
        cfg, hm = self.cfg, self.hm
        prompts = [hm.encode(p.question) for p in problems for _ in range(cfg.group_size)]
        seed = derived_seed(cfg.seed, step, self.acc.process_index, micro)
        dec = make_decoder(hm, prompts, cfg.rollout_config(seed), keep_latents=self.hybrid)   # CUDA graph on a GPU
        with torch.no_grad(), self._folded():
            traces = dec.run()
        rows = [p for p in problems for _ in range(cfg.group_size)]
        texts = [t.text for t in traces]
        scores = [score(p.kind, text, p.answer) for p, text in zip(rows, texts)]     # (correct, formatted)
        try:
            rewards = torch.tensor(apply_reward(self.reward_fn, texts, [p.answer for p in rows],
                                                kinds=[p.kind for p in rows], questions=[p.question for p in rows]))
        except ValueError as err:
            raise TrainingError(f"step {step + 1}: {err}") from err
        batch = pack(traces, hm.pad_id, hm.device)
        with torch.no_grad(), hm.model.disable_adapter():
            ref = completion_logprobs(hm.model, hm.embeddings, batch, cfg.top_k, cfg.temperature, gate=None)
        adv = group_advantages(rewards, cfg.group_size).to(hm.device)
        steps = [s for t in traces for s in t.steps]
        think = [s for s in steps if s.thinking]
        stats = {"reward_mean": rewards.mean().item(), "accuracy": sum(c and f for c, f in scores) / len(scores),
                 "correct_rate": sum(c for c, _ in scores) / len(scores),
                 "format_rate": sum(f for _, f in scores) / len(scores),
                 "completion_len_mean": sum(len(t.token_ids) for t in traces) / len(traces),
                 **gate_stats([s.gate_a for s in think], [s.hidden_ratio for s in think]),
                 "gate_records": [r for t in traces for r in thinking_records(t.steps)],
                 "tokens": dec.generated, "rollout_seconds": dec.seconds}
        return {"batch": batch, "ref": ref, "adv": adv}, stats

    def _folded(self):
        """folded_lora (cfg.fold_lora) where rollouts use the eager decoder; else nothing.  Rollouts, the
        loss pass and held-out evaluation all run under it (never the adapter-off reference pass)."""
        if self.cfg.fold_lora and not static_wanted(self.hm.device):
            return folded_lora(self.hm.model)
        return contextlib.nullcontext()

    def train_step(self, step: int) -> dict:
        """One training step: rollouts for this process's problems, the loss passes and num_iterations updates,
        then the step's METRICS (averaged over processes)."""
        t0 = time.perf_counter()
        micro_batches, stats = self._collect(step)
        update = self._optimise(micro_batches)
        return self._step_metrics(step, stats, update, t0)

    def _collect(self, step: int) -> tuple[list[dict], list[dict]]:
        """(micro-batches, their rollout stats): this process's share of the step's problems, grad_accum
        micro-batches of batch_prompts prompts x group_size completions each."""
        cfg, acc = self.cfg, self.acc
        world, rank, B = acc.num_processes, acc.process_index, cfg.batch_prompts
        problems = problems_for_step(self.task.problems, step, B * world * cfg.grad_accum, cfg.seed)
        micro_batches, stats, self.seen = [], [], []
        for micro in range(cfg.grad_accum):
            first = (micro * world + rank) * B
            self.seen += problems[first:first + B]
            mb, st = self._rollouts(step, micro, problems[first:first + B])
            micro_batches.append(mb)
            stats.append(st)
        return micro_batches, stats

    def _optimise(self, micro_batches: list[dict]) -> dict:
        """The teacher-forced loss passes (the first fixes each micro-batch's old log-probs, drift and TIS
        weights) and num_iterations guarded updates; returns drift, gaps, kl, losses, grad_norm, skipped, lr."""
        cfg, acc = self.cfg, self.acc
        drift, kl, losses, grad_norm, skipped, gaps, lr = 0.0, 0.0, [], 0.0, 0, [], 0.0
        for it in range(cfg.num_iterations):
            for i, mb in enumerate(micro_batches):
                sync = contextlib.nullcontext() if i == len(micro_batches) - 1 else acc.no_sync(self.ddp)
                with sync, self._folded():             # the rollout's fold, refolded after an update (A, B changed)
                    logp = self.ddp(mb["batch"])
                    if it == 0:
                        mb["old"] = logp.detach()
                        valid = mb["batch"].valid
                        gaps.append((mb["old"] - mb["batch"].logprobs)[valid].abs())
                        drift = max(drift, gaps[-1].max().item())
                        mb["tis"] = tis_weights(mb["old"], mb["batch"].logprobs, cfg.tis_cap)
                    loss, ls = policy_loss(logp, mb["old"], mb["ref"], mb["adv"], mb["batch"].valid,
                                           cfg.beta, cfg.epsilon, is_weight=mb["tis"])
                    acc.backward(loss / cfg.grad_accum)
                losses.append(loss.item())
                kl = ls["kl"] if it == 0 else kl
            grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm))
            if math.isfinite(grad_norm) and all(math.isfinite(x) for x in losses):
                skipped += not self._guarded_update()
            else:
                skipped += 1
            lr = self.optimizer.param_groups[0]["lr"]                  # the rate this update used
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
        return dict(drift=drift, gaps=gaps, kl=kl, losses=losses, grad_norm=grad_norm, skipped=skipped, lr=lr)

    def _step_metrics(self, step: int, stats: list[dict], update: dict, t0: float) -> dict:
        """The step's METRICS line: rollout stats averaged over micro-batches and processes, the update's."""
        tokens = sum(s["tokens"] for s in stats)
        seconds = sum(s["rollout_seconds"] for s in stats)
        local = {k: sum(s[k] for s in stats) / len(stats) for k in
                 ("reward_mean", "accuracy", "correct_rate", "format_rate", "completion_len_mean", *GATE_STATS)}
        local.update(kl=update["kl"], loss=sum(update["losses"]) / len(update["losses"]),
                     logprob_drift_median=torch.cat(update["gaps"]).median().item(),
                     rollout_tokens_per_s=tokens / seconds if seconds else 0.0)
        local.update(nan_for_none(selectivity([r for s in stats for r in s["gate_records"]])))   # pooled micro-batches
        metrics = {"step": step + 1, **self._mean_over_ranks(local), "grad_norm": update["grad_norm"],
                   "lr": update["lr"], "logprob_drift": self._max_over_ranks(update["drift"]),
                   "skipped_updates": update["skipped"], "rollout_seconds": seconds,
                   "processes": self.acc.num_processes, "step_seconds": time.perf_counter() - t0}
        return none_for_nan({k: metrics[k] for k in METRICS + ["skipped_updates", "rollout_seconds", "processes"]})

    def _guarded_update(self) -> bool:
        """optimizer.step(), undone (parameters and optimizer state) if it leaves a non-finite value."""
        params = [p.detach().clone() for p in self.params]
        state = copy.deepcopy(self.optimizer.state_dict())
        self.optimizer.step()
        if all(torch.isfinite(p).all() for p in self.params):
            return True
        with torch.no_grad():
            for p, old in zip(self.params, params):
                p.copy_(old)
        self.optimizer.load_state_dict(state)
        return False

    def _mean_over_ranks(self, d: dict) -> dict:
        if self.acc.num_processes == 1:
            return d
        t = self.acc.reduce(torch.tensor(list(d.values()), device=self.acc.device), reduction="mean")
        return dict(zip(d, t.tolist()))

    def _max_over_ranks(self, x: float) -> float:
        if self.acc.num_processes == 1:
            return x
        t = torch.tensor([x], device=self.acc.device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return t.item()

    def save(self, step: int, with_state: bool = True) -> Path:
        path = self.out / "checkpoints" / f"step-{step:06d}"
        if self.acc.is_main_process:
            state = {"step": step, "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                     "rng": ckpt.rng_state()} if with_state else None
            ckpt.save_checkpoint(path, model=self.hm.model, gate=self.hm.gate if self.hybrid else None,
                                 train_config=self.cfg.to_dict(), step=step, trainer_state=state)
            rundir.prune_checkpoints(self.out, self.cfg.keep_checkpoints)
        self.acc.wait_for_everyone()
        return path

    def log(self, metrics: dict) -> None:
        if self.acc.is_main_process:
            with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(metrics) + "\n")
            if self.tb is not None:
                for k, v in metrics.items():
                    if k != "step" and v is not None:          # None: no such token this step
                        self.tb.add_scalar(k, v, metrics["step"])
        if self.callback:
            self.callback(metrics)

    def held_out_eval(self, step: int) -> dict | None:
        """Greedy accuracy on the task's held-out split; one line in <out>/eval.jsonl (main process)."""
        if not self.acc.is_main_process:
            return None
        from .evaluate import evaluate
        problems = load_task(self.cfg.task, held_out_split(self.cfg.task), limit=self.cfg.eval_limit).problems
        cfg = RolloutConfig(max_new_tokens=self.cfg.max_new_tokens, temperature=self.cfg.temperature,
                            top_k=self.cfg.top_k, greedy=True, hybrid=self.hybrid, stop=self.cfg.stop)
        with self._folded():
            summary = {"step": step, **evaluate(self.hm, problems, cfg)[0]}
        with open(self.out / "eval.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(summary) + "\n")
        return summary

    def train(self) -> Path | None:
        """Run from the start (or resumed) step to cfg.steps; returns the last checkpoint written."""
        last = None
        if self.acc.is_main_process:
            (self.out / "train_config.json").write_text(json.dumps(self.cfg.to_dict(), indent=2), encoding="utf-8")
        bad, start = 0, time.time()
        out_of_time = lambda: self.cfg.max_minutes > 0 and time.time() - start > 60 * self.cfg.max_minutes  # noqa: E731
        for step in range(self.start_step, self.cfg.steps):
            metrics = self.train_step(step)
            self.log(metrics)
            bad = bad + 1 if metrics["skipped_updates"] == self.cfg.num_iterations else 0
            if bad >= self.cfg.max_bad_steps:
                kept = rundir.latest_checkpoint(self.out)
                raise TrainingError(f"{bad} steps in a row had a non-finite loss, gradient or update and were "
                                    f"skipped; stopping. Last good checkpoint: {kept or 'none yet'}")
            done = step + 1
            if self.cfg.eval_every and done % self.cfg.eval_every == 0:
                self.held_out_eval(done)
            stop = self.should_stop() or out_of_time()
            if (done % self.cfg.save_every == 0 and bad == 0) or done == self.cfg.steps or stop:
                last = self.save(done)
            if stop:
                break
        if self.tb is not None:
            self.tb.close()
        return last

"""Dataclass configs for each entry point; every field has a default and a help string.

Validation lives in __post_init__ (every field's type first, numbers finite), so a bad value fails
with one clear message wherever the config comes from (CLI flags, a JSON file, the app).
`to_dict`/`from_dict` round-trip through JSON (the trainer saves its config beside every checkpoint).
Test: pytest tests/test_trainer.py::test_invalid_hyperparameters tests/test_reliability_inputs.py
"""
import dataclasses
import json
import math
import numbers
from dataclasses import dataclass, field, fields
from pathlib import Path

from .errors import ConfigError, TrainingError  # noqa: F401  (TrainingError: re-exported, hrpo/errors.py)
from .prompts import PROMPT_FORMATS
from .rewards import REWARDS
from .stopping import STOP_RULES


def opt(default, help: str, **kw):
    """A dataclass field with a default and a help string (shown by the CLI)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


def check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def check_value_type(name: str, value, default) -> None:
    """`value` has the kind of `default` (int, float, str, bool, list of str, or str/None); finite numbers."""
    bad = lambda kind: ConfigError(f"{name} must be {kind}, got {value!r}")  # noqa: E731
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad("true or false")
    elif isinstance(default, numbers.Integral):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise bad("an integer")
    elif isinstance(default, numbers.Real):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise bad("a number")
        if not math.isfinite(value):
            raise bad("a finite number")
    elif isinstance(default, list):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad("a list of strings")
    elif not isinstance(value, str) and not (default is None and value is None):
        raise bad("a string")


def check_seed(seed) -> None:
    check(0 <= seed < 2**63, f"seed must be an integer in [0, 2**63), got {seed}")


def unsafe_dir(path) -> str | None:
    """Why `path` must not be an output or export destination, or None when it may be.

    Refused: an empty string, the current directory or one of its parents, the home directory or one
    of its parents.  A run or an export there would mix with (or, for an export, replace) the user's
    own files.  Test: pytest tests/test_reliability_files.py -k out
    """
    if not str(path).strip():
        return "is empty"
    target, cwd, home = Path(path).expanduser().resolve(), Path.cwd().resolve(), Path.home().resolve()
    if target == cwd or target in cwd.parents:
        return f"is the current directory{' or one of its parents' if target != cwd else ''} ({target})"
    if target == home or target in home.parents:
        return f"is the home directory{' or one of its parents' if target != home else ''} ({target})"
    return None


def check_device(device) -> None:
    ok = device is None or device in ("cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit())
    check(ok, f"unknown device {device!r}; use cpu, cuda or cuda:N")


class Config:
    """Mixin: JSON round-trip and field listing for the CLI."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def check_types(self) -> None:
        """Every field has its default's kind (called first in __post_init__; JSON can hold anything)."""
        for f in fields(self):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            check_value_type(f.name, getattr(self, f.name), default)

    @classmethod
    def from_dict(cls, d: dict):
        check(isinstance(d, dict), f"{cls.__name__}: expected a JSON object of fields, got {type(d).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        check(not unknown, f"{cls.__name__}: unknown field(s) {', '.join(unknown)}")
        return cls(**d)

    @classmethod
    def from_json(cls, path: str):
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))


@dataclass
class GateConfig(Config):
    c: float = opt(8.0, "gate sharpness c in a = exp(-c * softplus(-Lambda) * r)")
    r_min: float = opt(0.99, "lower bound of u ~ U(r_min, r_max) used to initialise Lambda")
    r_max: float = opt(0.999, "upper bound of u used to initialise Lambda (a starts near 1)")

    def __post_init__(self):
        self.check_types()
        check(self.c > 0, f"c must be > 0, got {self.c}")
        check(0 < self.r_min < self.r_max < 1,
              f"need 0 < r_min < r_max < 1, got r_min={self.r_min}, r_max={self.r_max}")


@dataclass
class RolloutConfig(Config):
    max_new_tokens: int = opt(256, "stop after this many generated tokens")
    temperature: float = opt(0.5, "sampling temperature tau (also shapes the latent mixture)")
    top_k: int = opt(50, "keep the k most likely tokens (0 = whole vocabulary)")
    greedy: bool = opt(False, "take the argmax token instead of sampling (evaluation)")
    hybrid: bool = opt(True, "mix latent embeddings into the input while reasoning (off = plain decoding)")
    seed: int = opt(0, "seed of the sampling generator")
    stop: str = opt("answer", "when a completion ends: answer = once its answer line is complete ('####', the answer, "
                              "a newline) or at EOS; eos = the paper's: at EOS or max_new_tokens, the answer read "
                              "after the last '####' (hrpo/stopping.py)")

    def __post_init__(self):
        self.check_types()
        check(self.stop in STOP_RULES, f"stop must be one of {', '.join(STOP_RULES)}, got {self.stop!r}")
        check(self.max_new_tokens >= 1, f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        check(self.temperature > 0, f"temperature must be > 0, got {self.temperature}")
        check(self.top_k >= 0, f"top_k must be >= 0 (0 = no top-k), got {self.top_k}")
        check_seed(self.seed)


LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class TrainConfig(Config):
    model: str = opt("default", "base model spec (see hrpo.models.load_model)")
    task: str = opt("arith", "training task: arith[:level] | gsm8k | mgsm:<lang> | jsonl:PATH")
    mode: str = opt("hrpo", "hrpo (hybrid latent rollouts, gate trained) or grpo (plain tokens, no gate)")
    reward: str = opt("task", "reward function (hrpo.rewards.REWARDS): task = the check of each problem's own kind "
                              "(math, choice or qa); math | choice | qa = that check for every problem")
    out: str = opt("runs/hrpo", "output directory: metrics.jsonl and checkpoints/")
    steps: int = opt(100, "number of training steps (one batch of rollouts each)")
    group_size: int = opt(4, "G: completions sampled per prompt")
    batch_prompts: int = opt(2, "prompts per micro-batch (per process)")
    grad_accum: int = opt(1, "micro-batches per optimizer update")
    max_new_tokens: int = opt(128, "completion length cap during training")
    temperature: float = opt(0.5, "sampling temperature tau")
    top_k: int = opt(50, "top-k of the sampling distribution and the latent mixture")
    stop: str = opt("answer", "when a rollout ends: answer (the answer line is complete, or EOS) | eos (EOS or "
                              "max_new_tokens, the paper's); see RolloutConfig.stop")
    prompt_format: str = opt("hint", "how a question becomes the prompt (hrpo.prompts.PROMPT_FORMATS): hint = the "
                                     "question and the answer-format hint, plain = the question as given; recorded "
                                     "in every checkpoint, so decoding asks a visitor's question as in training")
    lr: float = opt(5e-6, "learning rate of the LoRA weights")
    gate_lr: float = opt(1e-4, "learning rate of the gate linears W_r, W_i")
    lambda_lr: float = opt(1e-3, "learning rate of Lambda")
    weight_decay: float = opt(0.1, "AdamW weight decay: LoRA matrices, and the gate linears and Lambda unless "
                                   "decay_gate is off")
    decay_gate: bool = opt(True, "apply weight_decay to W_r, W_i and Lambda too, as the authors do (decoupled decay "
                                 "pulls Lambda towards 0, i.e. towards more latent, every update)")
    gate_weight_decay: float = opt(-1.0, "AdamW weight decay of the gate linears W_r, W_i alone (Lambda keeps "
                                         "weight_decay under decay_gate); -1 = the same as Lambda's (weight_decay "
                                         "when decay_gate is on, else 0), 0 = none")
    adam_beta1: float = opt(0.9, "AdamW beta1")
    adam_beta2: float = opt(0.99, "AdamW beta2")
    warmup_ratio: float = opt(0.1, "share of updates spent in linear warm-up before the cosine decay")
    max_grad_norm: float = opt(0.1, "gradient-norm clip")
    beta: float = opt(0.005, "KL coefficient against the base model (adapter off, plain tokens)")
    num_iterations: int = opt(1, "optimizer updates per batch of rollouts (PPO-style when > 1)")
    epsilon: float = opt(0.2, "clip range of the ratio when num_iterations > 1")
    tis_cap: float = opt(2.0, "truncated importance sampling against the rollout's own log-probs: each token's "
                              "policy-gradient term is weighted by min(exp(lp_teacher_forced - lp_rollout), tis_cap) "
                              "(corrects bf16 decode/teacher-forcing drift; 0 = off)")
    fold_lora: bool = opt(True, "fold each LoRA adapter into its base weight for rollouts and the loss pass: one "
                                "matmul x(W + sBA), gradients to A and B unchanged, rollout and teacher-forced "
                                "log-probs identical in bf16 too (hrpo.cpu_precision.folded_lora; eager decoder only)")
    lora_rank: int = opt(32, "LoRA rank")
    lora_alpha: float = opt(64.0, "LoRA alpha")
    lora_targets: list = opt(LORA_TARGETS, "module names that get LoRA adapters")
    c: float = opt(8.0, "gate sharpness c")
    r_min: float = opt(0.99, "Lambda init: lower bound of u")
    r_max: float = opt(0.999, "Lambda init: upper bound of u")
    seed: int = opt(0, "seed of the LoRA/gate init, prompt order and sampling")
    save_every: int = opt(10, "write a checkpoint every N steps (and at the end)")
    keep_checkpoints: int = opt(2, "how many recent checkpoints to keep")
    eval_every: int = opt(0, "held-out greedy accuracy every N steps (0 = never)")
    eval_limit: int = opt(50, "held-out problems per evaluation")
    max_minutes: float = opt(0.0, "wall-clock budget: checkpoint and stop after this many minutes (0 = none)")
    max_bad_steps: int = opt(3, "stop after this many steps in a row skipped for NaN/inf (loss, gradient or update)")
    tensorboard: bool = opt(False, "also log to TensorBoard (when installed)")
    device: str | None = opt(None, "cpu | cuda (default: cuda when available)")
    dtype: str | None = opt(None, "float32 | bfloat16 (default: bf16 on cuda and on CPUs with native bf16, else fp32)")
    emulated_bf16: bool = opt(False, "train in bfloat16 on a CPU without native bf16 kernels anyway (refused "
                                     "otherwise: slower than float32 there, and the loss pass's log-probs drift "
                                     "from the rollout's, i.e. off-policy)")

    def __post_init__(self):
        self.check_types()
        check(self.mode in ("hrpo", "grpo"), f"mode must be hrpo or grpo, got {self.mode!r}")
        check(self.stop in STOP_RULES, f"stop must be one of {', '.join(STOP_RULES)}, got {self.stop!r}")
        check(self.prompt_format in PROMPT_FORMATS,
              f"prompt_format must be one of {', '.join(PROMPT_FORMATS)}, got {self.prompt_format!r}")
        check(self.reward in REWARDS, f"unknown reward {self.reward!r}; known: {', '.join(REWARDS)}")
        check(self.steps >= 1, f"steps must be >= 1, got {self.steps}")
        check(self.group_size >= 2, f"group_size must be >= 2 (advantages compare completions), got {self.group_size}")
        check(self.batch_prompts >= 1 and self.grad_accum >= 1, "batch_prompts and grad_accum must be >= 1")
        check(self.max_new_tokens >= 1, f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        check(self.temperature > 0, f"temperature must be > 0, got {self.temperature}")
        for name in ("lr", "gate_lr", "lambda_lr"):
            check(getattr(self, name) > 0, f"{name} must be > 0, got {getattr(self, name)}")
        check(self.weight_decay >= 0 and self.beta >= 0, "weight_decay and beta must be >= 0")
        check(self.gate_weight_decay >= 0 or self.gate_weight_decay == -1,
              f"gate_weight_decay must be >= 0, or -1 for Lambda's decay, got {self.gate_weight_decay}")
        check(0 <= self.warmup_ratio < 1, f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        check(self.max_grad_norm > 0, f"max_grad_norm must be > 0, got {self.max_grad_norm}")
        check(self.num_iterations >= 1 and 0 < self.epsilon < 1, "num_iterations >= 1 and 0 < epsilon < 1")
        check(self.tis_cap >= 0, f"tis_cap must be >= 0 (0 = off), got {self.tis_cap}")
        check(self.lora_rank >= 1 and self.lora_alpha > 0, "lora_rank >= 1 and lora_alpha > 0")
        check(self.save_every >= 1 and self.keep_checkpoints >= 1, "save_every and keep_checkpoints must be >= 1")
        check(self.eval_every >= 0, f"eval_every must be >= 0 (0 = never), got {self.eval_every}")
        check(self.eval_every == 0 or self.eval_limit >= 1,
              f"eval_limit must be >= 1 when eval_every is set, got {self.eval_limit}")
        check(self.max_minutes >= 0 and self.max_bad_steps >= 1, "max_minutes must be >= 0 and max_bad_steps >= 1")
        bad_out = unsafe_dir(self.out)
        check(bad_out is None, f"out {self.out!r} {bad_out}: give the run a directory of its own, e.g. runs/<name>")
        check_seed(self.seed)
        check_device(self.device)
        GateConfig(self.c, self.r_min, self.r_max)

    @property
    def gate_config(self) -> GateConfig:
        return GateConfig(self.c, self.r_min, self.r_max)

    def rollout_config(self, seed: int) -> RolloutConfig:
        return RolloutConfig(max_new_tokens=self.max_new_tokens, temperature=self.temperature, top_k=self.top_k,
                             hybrid=self.mode == "hrpo", seed=seed, stop=self.stop)


# ---------------------------------------------------------------- training recipes (configs/*.json)

RECIPES_DIR = Path(__file__).resolve().parents[1] / "configs"


def recipes() -> list[str]:
    """Names of the training recipes in configs/ (`configs/<name>.json`, TrainConfig fields), sorted."""
    return sorted(p.stem for p in RECIPES_DIR.glob("*.json"))


def recipe(name: str, **overrides) -> TrainConfig:
    """The TrainConfig of recipe `name`: configs/<name>.json, the file `python -m hrpo train --config` takes,
    with `overrides` (field=value, e.g. out="runs/x", steps=50) applied, all validated.

    `smollm2-arith-hrpo` and `smollm2-arith-grpo` are the settings of the shipped checkpoints of the same
    names (docs/DESIGN.md section 2).  Test: pytest tests/test_recipe.py
    """
    known = recipes()
    check(name in known, f"unknown recipe {name!r}; known: {', '.join(known) or 'none'} (files in {RECIPES_DIR})")
    with open(RECIPES_DIR / f"{name}.json", encoding="utf-8") as f:
        values = json.load(f)
    check(isinstance(values, dict), f"recipe {name}: expected a JSON object of TrainConfig fields")
    return TrainConfig.from_dict({**values, **overrides})

"""Hosting policy: what a visitor of this app may load and run, decided once at start-up.

`Host.from_env()` reads the environment once:
  local (default)       every model spec, the runs under $HRPO_RUNS, training on, generous limits
  hosted                HRPO_HOSTED=1, or on a Hugging Face Space (SPACE_ID is set): prompts up to
                        2000 characters, 512 new tokens, Compare bounded (models, problems, new tokens and
                        models x problems x new tokens), only HRPO_MODEL and checkpoints under checkpoints/
                        loadable (after resolving symlinks and '..'), training only with HRPO_ALLOW_TRAINING=1
  ZeroGPU               hosted, and SPACES_ZERO_GPU is set: a GPU is attached only while a decorated callback
                        runs (studio/gpu.py), so training is always off
Every tab asks the one `Host` it is given; nothing of this lives in hrpo/ or analysis/.
`ModelPool` loads each allowed spec once, one lock per spec (a slow load never blocks other models).
Test: pytest tests/test_hosting.py tests/test_app.py -k hosted
"""
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from hrpo import checkpoint, rundir
from hrpo.embedded import GEMMA3, installed_parts
from hrpo.errors import ModelSpecError
from hrpo.prompts import check_prompt

SHIPPED = {"hrpo": "checkpoints/smollm2-arith-hrpo", "grpo": "checkpoints/smollm2-arith-grpo",
           "multi-hrpo": "checkpoints/gemma3-270m-multi-hrpo"}
TRUE = ("1", "true", "yes", "on")


def is_checkpoint_inside(path: Path, folder: Path) -> bool:
    """True when `path` resolves (symlinks, '..') to a checkpoint inside `folder`."""
    target = path.resolve()
    return folder.resolve() in target.parents and checkpoint.is_checkpoint(target)


HOSTED_COMPARE = dict(models=4, problems=20, new_tokens=256, tokens=8192)   # per comparison, hosted


def multilingual_base_installed() -> bool:
    """Gemma 3 270M's packages are installed, or its GGUF is already in the cache."""
    return GEMMA3.cache.is_file() or installed_parts(GEMMA3) is not None


@dataclass(frozen=True)
class Host:
    """The hosting policy of one app process (see the module doc)."""
    root: Path
    runs_dir: Path
    hosted: bool = False
    zero_gpu: bool = False
    training_flag: bool = False            # HRPO_ALLOW_TRAINING=1
    default_model: str = "default"
    model_chosen: bool = False             # HRPO_MODEL was set: it decides what Live opens on
    compare_limits: dict | None = field(default=None)

    @classmethod
    def from_env(cls, root, runs_dir, env=os.environ) -> "Host":
        hosted = env.get("HRPO_HOSTED") == "1" or bool(env.get("SPACE_ID"))
        zero = hosted and env.get("SPACES_ZERO_GPU", "").strip().lower() in TRUE
        return cls(root=Path(root), runs_dir=Path(runs_dir), hosted=hosted, zero_gpu=zero,
                   training_flag=env.get("HRPO_ALLOW_TRAINING") == "1",
                   default_model=env.get("HRPO_MODEL") or "default", model_chosen=bool(env.get("HRPO_MODEL")),
                   compare_limits=dict(HOSTED_COMPARE) if hosted else None)

    # ------------------------------------------------------------------------------ limits
    @property
    def queue(self) -> dict:
        """Gradio's queue: requests served at a time and waiting at most (app.py)."""
        return {"default_concurrency_limit": 2, "max_size": 64} if self.hosted else \
            {"default_concurrency_limit": 4, "max_size": None}

    def limits_text(self) -> str:
        """The hosted limits in words, as the README quotes them (tests/test_hosting.py checks the quote)."""
        h = Host(self.root, self.runs_dir, hosted=True)
        c, q = HOSTED_COMPARE, h.queue
        return (f"prompts up to {h.max_prompt_chars} characters and {h.max_prompt_tokens} tokens, up to "
                f"{h.max_new_tokens} new tokens, Compare up to {c['models']} models, {c['problems']} problems, "
                f"{c['new_tokens']} new tokens and {c['tokens']} tokens in all, "
                f"{q['default_concurrency_limit']} requests at a time in a queue of {q['max_size']}")

    @property
    def max_prompt_chars(self) -> int:
        return 2000 if self.hosted else 20000

    @property
    def max_prompt_tokens(self) -> int | None:
        """Hosted: a bound on the prompt's tokens too (2,000 characters outside the BMP are about 8,000 tokens)."""
        return 1024 if self.hosted else None

    @property
    def max_new_tokens(self) -> int:
        return 512 if self.hosted else 2048

    @property
    def allow_training(self) -> bool:
        return not self.zero_gpu and (not self.hosted or self.training_flag)

    def training_note(self) -> str:
        """Why the Train tab has no controls here ('' where training is allowed)."""
        if self.zero_gpu:
            return ("Training is off on ZeroGPU hardware: a GPU is attached only for the few seconds of each request. "
                    "Train locally (`python -m hrpo train`, or this app run with `python app.py`) or on a Space with "
                    "dedicated hardware and `HRPO_ALLOW_TRAINING=1`.")
        if not self.allow_training:
            return ("Training is switched off on this host. Run the app locally (`python app.py`) to train, or set "
                    "`HRPO_ALLOW_TRAINING=1` in the Space's settings.")
        return ""

    def check_training(self) -> None:
        """All job control (start, stop, resume) is refused where training is not allowed."""
        if not self.allow_training:
            raise ValueError("training is switched off on this host" + (" (ZeroGPU)" if self.zero_gpu else ""))

    HOSTED_TRAINING = {"steps": 500, "group_size": 16, "batch_prompts": 8}

    def check_training_request(self, task: str, steps: int, group_size: int, batch_prompts: int,
                               max_new: int) -> None:
        """Hosted: a job trains only on a built-in task (no file of the server's) and within bounded sizes
        (max_new as Live's); checked before a job starts.  Locally anything TrainConfig accepts."""
        if not self.hosted:
            return
        from hrpo.tasks import load_task
        if str(task).strip().startswith("jsonl:"):
            raise ValueError("hosted mode: training takes a built-in task only (arith, forms, gsm8k, mgsm:<lang>), "
                             "not a file")
        load_task(task, "train", limit=1)                       # an unknown spec is refused here, not by the job
        lim = self.HOSTED_TRAINING
        asked = {"steps": steps, "group_size": group_size, "batch_prompts": batch_prompts}
        over = [f"{k} {v} (at most {lim[k]})" for k, v in asked.items() if v > lim[k]]
        if max_new > self.max_new_tokens:
            over.append(f"max new tokens {max_new} (at most {self.max_new_tokens})")
        if over:
            raise ValueError("hosted mode: " + ", ".join(over))

    def check_prompt(self, prompt: str, max_new: int) -> None:
        """The prompt (hrpo.prompts.check_prompt, within this host's length) and the new tokens asked for."""
        check_prompt(prompt, self.max_prompt_chars)
        if max_new > self.max_new_tokens:
            raise ValueError(f"at most {self.max_new_tokens} new tokens here")

    def check_prompt_tokens(self, tokenizer, prompt: str) -> None:
        """Hosted: the prompt within max_prompt_tokens of the model's tokenizer (locally the decoder checks the
        context)."""
        if self.max_prompt_tokens is None:
            return
        n = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        if n > self.max_prompt_tokens:
            raise ValueError(f"the prompt is too long ({n} tokens; the limit here is {self.max_prompt_tokens})")

    def compare_request(self, specs, limit: int, max_new: int, ablation: bool = False) -> list[str]:
        """The distinct model specs, in order, each allowed here, within the compare limits; checked before
        any model is loaded (the latent ablation decodes twice, so it counts double)."""
        specs = list(dict.fromkeys(specs or []))
        if not specs:
            raise ValueError("pick at least one model")
        c = self.compare_limits
        if c and (len(specs) > c["models"] or limit > c["problems"] or max_new > c["new_tokens"]
                  or len(specs) * limit * max_new > c["tokens"]):
            raise ValueError(f"hosted mode: at most {c['models']} models, {c['problems']} problems, {c['new_tokens']} "
                             f"new tokens and {c['tokens']} tokens in all (models x problems x new tokens) per "
                             f"comparison; this asks for {len(specs)} x {limit} x {max_new} = "
                             f"{len(specs) * limit * max_new}")
        if c and ablation and 2 * len(specs) * limit * max_new > c["tokens"]:
            raise ValueError(f"hosted mode: the latent ablation decodes twice, so at most {c['tokens'] // 2} tokens "
                             "(models x problems x new tokens) with it")
        for spec in specs:
            self.resolve(spec)                       # a disallowed model is refused before any decoding
        return specs

    def compare_note(self) -> str:
        c = self.compare_limits
        return "" if not c else (f"Hosted: up to {c['models']} models, {c['problems']} problems and {c['new_tokens']} "
                                 f"new tokens, {c['tokens']} tokens in all (models × problems × new tokens) per "
                                 "comparison.")

    # ------------------------------------------------------------------------------ models
    def resolve(self, spec: str) -> str:
        """The spec to load.  Hosted: only the configured default or a checkpoint under <root>/checkpoints."""
        spec = (spec or self.default_model).strip()
        local = self.root / spec
        if not self.hosted:
            return str(local) if spec and not Path(spec).is_absolute() and local.exists() else spec
        if spec == self.default_model:
            return spec
        if not is_checkpoint_inside(local, self.root / "checkpoints"):
            raise ModelSpecError(f"hosted mode: {spec!r} is not allowed; pick the default model or a checkpoint "
                                 f"under checkpoints/")
        return str(local.resolve())

    def model_choices(self) -> list[str]:
        """The pickers' specs: the default, the shipped checkpoints (no symlink leading out), and locally the
        multilingual base (gemma3-270m, when installed; a hosted first load would de-quantise it for minutes)
        and the latest checkpoint of each run under runs_dir; tiny-random (a test fixture) only when it is
        HRPO_MODEL."""
        out = [self.default_model]
        if not self.hosted and self.default_model != "default":
            out.append("default")
        ckpts = self.root / "checkpoints"
        out += sorted(f"checkpoints/{p.name}" for p in ckpts.glob("*") if is_checkpoint_inside(p, ckpts))
        if not self.hosted:
            out += [GEMMA3.name] if multilingual_base_installed() else []
            for run in sorted(self.runs_dir.glob("*")):
                last = rundir.latest_checkpoint(run)
                if last is not None:
                    out.append(self.spec_of(last))
        return list(dict.fromkeys(out))

    def spec_of(self, path: Path) -> str:
        """A run's checkpoint as the pickers show it: relative to the repository when inside it."""
        try:
            return str(path.resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(path)

    def live_default(self, choices: list[str]) -> str:
        """Live opens on the shipped HRPO checkpoint (hosted or not), unless HRPO_MODEL is set."""
        if not self.model_chosen and SHIPPED["hrpo"] in choices:
            return SHIPPED["hrpo"]
        return self.default_model if self.default_model in choices else choices[0]

    def multilingual_default(self, choices: list[str]) -> str | None:
        """The model Live's examples in other languages open on: the multilingual HRPO checkpoint when shipped,
        else (locally) the multilingual base, else None (the current model stays)."""
        return next((m for m in (SHIPPED["multi-hrpo"], GEMMA3.name) if m in choices), None)

    def start_up_models(self, choices: list[str]) -> list[str]:
        """What start-up loads, in order: Live's default; on ZeroGPU also Compare's (models move to CUDA before any
        GPU call); then the shipped multilingual HRPO checkpoint when there is one (its first load de-quantises
        Gemma for minutes, which a visitor picking a Chinese example should not wait for)."""
        first = [self.live_default(choices), *(self.compare_default(choices) if self.zero_gpu else [])]
        return list(dict.fromkeys([*first, *[m for m in [SHIPPED["multi-hrpo"]] if m in choices]]))

    def compare_default(self, choices: list[str]) -> list[str]:
        """Compare pre-selects base, GRPO and HRPO (what exists of them)."""
        return [m for m in ("default", SHIPPED["grpo"], SHIPPED["hrpo"]) if m in choices] or choices[:3]

    # ------------------------------------------------------------------------------ dynamics
    def dynamics_dirs(self) -> dict:
        """{label: dir} with a metrics.jsonl: shipped checkpoints (no symlink leading out), and locally every run."""
        from analysis import dynamics
        ckpts = self.root / "checkpoints"
        found = dynamics.discover(ckpts, None if self.hosted else self.runs_dir)
        return {k: d for k, d in found.items()
                if not k.startswith("checkpoints/") or ckpts.resolve() in Path(d).resolve().parents}

    def dynamics_note(self, found: dict, chosen: dict) -> str:
        """The line under the dynamics figure: what is shown, or how to get curves."""
        shipped = [k for k in found if k.startswith("checkpoints/")]
        note = "" if shipped else ("The shipped checkpoints carry no metrics.jsonl yet, "
                                   "so there are no curves for them. ")
        if not found:
            return note + ("" if self.hosted else
                           "No run has metrics yet: train one on the Train tab "
                           "(`runs/<name>/metrics.jsonl` appears here).")
        return note + f"{len(chosen)} of {len(found)} runs shown; the curves follow runs as they write metrics.jsonl."


class ModelPool:
    """Loaded models by spec, each loaded once, for the app.  One lock per spec: a request for a loaded
    model never waits behind another model's load.  `resolve` maps a spec to what load_model gets (the
    host's allow-list); `device` is passed to load_model (None: CUDA where available, else CPU)."""

    def __init__(self, resolve=lambda spec: spec, device: str | None = None):
        self.resolve, self.device = resolve, device
        self.models, self.status, self.locks, self.guard = {}, {}, {}, threading.Lock()

    @staticmethod
    def key(target: str) -> str:
        """One key per model: an existing path by its resolved absolute form (checkpoints/x, checkpoints/x/,
        ./checkpoints/x and /abs/checkpoints/x are one model), any other spec as given."""
        path = Path(target).expanduser()
        return str(path.resolve()) if path.exists() else target

    def get(self, spec: str):
        model = self.models.get(spec)                # the spec as last loaded: no resolve on the hot path
        if model is not None:
            return model
        target = self.resolve(spec)                  # refused specs fail here, before any lock or load
        key = self.key(target)
        with self.guard:
            lock = self.locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self.models:
                from hrpo.models import load_model
                self.status[spec] = "loading"
                try:
                    self.models[key] = load_model(target, device=self.device)
                except Exception as err:
                    self.status[spec] = f"failed: {str(err).splitlines()[0] if str(err) else type(err).__name__}"
                    raise
            self.models[spec] = self.models[key]
            self.status[spec] = "ready"
            return self.models[spec]

    def preload(self, specs: list[str], then=None) -> threading.Thread:
        """Load `specs` one after another in a background thread, calling `then()` (if given) after each successful
        load; a failure shows in that model's status line and the next one still loads."""
        def quiet():
            for spec in specs:
                try:
                    self.get(spec)
                except Exception:         # noqa: BLE001 - recorded in self.status, shown by line()
                    continue
                if then is not None:
                    then()
        thread = threading.Thread(target=quiet, name="hrpo-preload", daemon=True)
        thread.start()
        return thread

    def line(self, spec: str) -> str:
        st = self.status.get(spec, "not loaded")
        return {"ready": f"**{spec}**: ready", "loading": f"**{spec}**: loading..."}.get(st, f"**{spec}**: {st}")

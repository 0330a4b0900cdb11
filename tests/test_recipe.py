"""The shipped training recipe as config files (docs/DESIGN.md section 2): configs/<name>.json loads into
TrainConfig (as `python -m hrpo train --config` does) and equals the train config saved with the shipped
checkpoint of the same name; `hrpo.config.recipe(name, **overrides)` gives it to the app.
Test: pytest tests/test_recipe.py
"""
import dataclasses
import json

import pytest

from conftest import ROOT
from hrpo.config import ConfigError, TrainConfig, recipe, recipes

SHIPPED = ["smollm2-arith-grpo", "smollm2-arith-hrpo"]
STUDY = ["smollm2-forms-grpo", "smollm2-forms-hrpo"]      # docs/forms_study.md: the candidates to replace them
MULTI = ["gemma3-270m-multi-grpo", "gemma3-270m-multi-hrpo"]      # issue 36: the multilingual pair
# what makes the recipe: everything but where the run is written
MATTERS = ["model", "task", "mode", "steps", "group_size", "batch_prompts", "grad_accum", "max_new_tokens",
           "temperature", "top_k", "lr", "gate_lr", "lambda_lr", "weight_decay", "decay_gate", "adam_beta1",
           "adam_beta2", "warmup_ratio", "max_grad_norm", "beta", "num_iterations", "epsilon", "tis_cap", "fold_lora",
           "lora_rank", "lora_alpha", "lora_targets", "c", "r_min", "r_max", "seed", "dtype"]


@pytest.mark.parametrize("name", SHIPPED)
def test_recipe_file_is_the_shipped_checkpoints_train_config(name):
    from_file = TrainConfig.from_json(ROOT / "configs" / f"{name}.json")
    saved = json.loads((ROOT / "checkpoints" / name / "config.json").read_text())["train"]
    assert {k: getattr(from_file, k) for k in MATTERS} == {k: saved[k] for k in MATTERS}
    # and every other field the checkpoint recorded, bar the output directory
    assert {k: v for k, v in from_file.to_dict().items() if k in saved and k != "out"} == \
           {k: v for k, v in saved.items() if k != "out"}
    assert from_file.mode == name.rsplit("-", 1)[1] and from_file.out == f"runs/{name}"
    assert from_file.reward == "task"                      # what the trainer scored with before the field existed
    assert (from_file.stop, from_file.prompt_format) == ("eos", "hint")   # how the arith pair was trained
    assert recipe(name) == from_file


def test_recipe_helper_lists_overrides_and_refuses():
    assert recipes() == sorted(SHIPPED + STUDY + MULTI)
    cfg = recipe("smollm2-arith-hrpo", out="runs/mine", steps=50)
    assert (cfg.out, cfg.steps, cfg.lr, cfg.lora_rank) == ("runs/mine", 50, 1e-4, 8)
    assert dataclasses.replace(cfg, out="runs/smollm2-arith-hrpo", steps=300) == recipe("smollm2-arith-hrpo")
    with pytest.raises(ConfigError, match="unknown recipe 'nope'; known: gemma3-270m-multi-grpo, "):
        recipe("nope")
    with pytest.raises(ConfigError, match="unknown recipe"):
        recipe("../checkpoints/smollm2-arith-hrpo/config")
    with pytest.raises(ConfigError, match="unknown field"):
        recipe("smollm2-arith-hrpo", learning_rate=1.0)
    with pytest.raises(ConfigError, match="steps must be >= 1"):
        recipe("smollm2-arith-grpo", steps=0)


@pytest.mark.parametrize("mode", ["hrpo", "grpo"])
def test_forms_recipes_differ_from_the_shipped_one_only_where_the_study_says(mode):
    """The study recipes: the forms task, the answer-line stop, fp32 (exact on any CPU), the sweep's widest gate
    (gate lr 3e-2, no decay on W_r/W_i), checkpoints kept for selection on the validation split."""
    old, new = recipe(f"smollm2-arith-{mode}").to_dict(), recipe(f"smollm2-forms-{mode}").to_dict()
    changed = {k: new[k] for k in new if new[k] != old[k]}
    assert changed == {"task": "forms", "out": f"runs/smollm2-forms-{mode}", "stop": "answer", "max_new_tokens": 96,
                       "gate_lr": 0.03, "gate_weight_decay": 0.0, "save_every": 50, "keep_checkpoints": 10,
                       "eval_every": 100, "eval_limit": 300, "dtype": "float32"}


@pytest.mark.parametrize("mode", ["hrpo", "grpo"])
def test_multilingual_recipes_are_the_forms_study_on_gemma(mode):
    """Gemma 3 270M on the `multi` task: the forms study's recipe but for the model, the task, the plain prompt
    format (a base model's completion prompt carries the worked example), 64 new tokens (one-line answers) and
    checkpoints every 25 updates (a Gemma step costs about twice a SmolLM2 one, docs/PERFORMANCE.md)."""
    old, new = recipe(f"smollm2-forms-{mode}").to_dict(), recipe(f"gemma3-270m-multi-{mode}").to_dict()
    changed = {k: new[k] for k in new if new[k] != old[k]}
    assert changed == {"model": "gemma3-270m", "task": "multi", "out": f"runs/gemma3-270m-multi-{mode}",
                       "prompt_format": "plain", "max_new_tokens": 64, "save_every": 25, "eval_limit": 220}


"""Prompt formats (hrpo/prompts.py): a question is presented as the model was trained, recorded in every
checkpoint and applied by HybridModel.encode on every decoding path; one prompt check for the CLI and the app."""
import pytest

from hrpo.config import ConfigError, TrainConfig
from hrpo.models import load_model
from hrpo.prompts import ANSWER_HINT, check_prompt, present, recorded_format
from hrpo.tasks import load_task
from hrpo.trainer import Trainer


def test_present_appends_the_hint_once():
    assert present("What is 2 + 3?", "hint") == "What is 2 + 3?" + ANSWER_HINT
    arith = load_task("arith", "test", limit=1).problems[0].question          # arith questions carry the hint
    assert arith.endswith(ANSWER_HINT) and present(arith, "hint") == arith
    assert present("What is 2 + 3?", "plain") == "What is 2 + 3?"
    with pytest.raises(ValueError, match="unknown prompt format"):
        present("x", "fancy")
    with pytest.raises(ConfigError, match="prompt_format"):
        TrainConfig(prompt_format="fancy")


def test_checkpoints_before_the_field_read_as_their_task_was_asked():
    assert recorded_format({"task": "arith"}) == recorded_format({"task": "arith:3"}) == "hint"
    assert recorded_format({"task": "gsm8k"}) == "plain"
    assert recorded_format({"task": "arith", "prompt_format": "plain"}) == "plain"


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["hint", "plain"])
def test_a_checkpoint_records_its_format_and_decoding_uses_it(tmp_path, fmt):
    cfg = TrainConfig(model="tiny-random", task="forms", steps=1, group_size=2, batch_prompts=1, max_new_tokens=4,
                      lora_rank=2, lora_alpha=4, device="cpu", dtype="float32", out=str(tmp_path), prompt_format=fmt)
    trainer = Trainer(cfg)
    question = trainer.task.problems[0].question
    assert ANSWER_HINT not in question                                          # forms questions are bare
    last = trainer.train()
    hm = load_model(str(last), device="cpu", dtype="float32")
    assert hm.prompt_format == fmt
    text = hm.tokenizer.decode(hm.encode(question))
    assert (ANSWER_HINT in text) == (fmt == "hint") and question in text
    assert load_model("tiny-random", device="cpu").prompt_format == "plain"     # a base model: as given


def test_shipped_checkpoints_are_asked_with_the_hint():
    from conftest import ROOT
    from hrpo.checkpoint import read_config
    for name in ("smollm2-arith-hrpo", "smollm2-arith-grpo"):
        assert recorded_format(read_config(ROOT / "checkpoints" / name)["train"]) == "hint"


def test_one_prompt_check():
    check_prompt("fine")
    for prompt, message in [("  ", "empty"), (None, "empty"), ("a \ud800 b", "lone surrogate"),
                            ("x" * 11, "too long .11 characters; the limit here is 10")]:
        with pytest.raises(ValueError, match=message):
            check_prompt(prompt, max_chars=10)

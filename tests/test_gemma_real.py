"""The real Gemma 3 270M (`gemma3-270m`, the pinned PyPI packages; requirements.txt installs them): it loads,
decodes in the completion prompt a base model gets, and hybrid decoding with the gate forced to a = 1 writes the
tokens of transformers' greedy generate(), in fp32.  Slow: the first load de-quantises the GGUF (minutes)."""
import pytest
import torch

from hrpo.config import RolloutConfig
from hrpo.rollout import Decoder
from hrpo.sampling import input_scale

pytestmark = pytest.mark.slow

QUESTIONS = {"en": "Tom has 12 marbles. He buys 7 more. How many marbles does Tom have now?",
             "zh": "小明有5个苹果，又买了3个。他现在有几个苹果？",
             "ru": "У Маши 9 конфет, она съела 4. Сколько конфет осталось?"}


@pytest.fixture(scope="module")
def gemma():
    from hrpo.models import load_model
    return load_model("gemma3-270m", device="cpu", dtype="float32")


def test_it_is_gemma_with_its_scale_and_no_chat_template(gemma):
    assert gemma.model.config.model_type.startswith("gemma3") and gemma.embeddings.shape == (262144, 640)
    assert input_scale(gemma.model) == pytest.approx(640 ** 0.5)
    assert not gemma.has_chat_template and gemma.encode("hi")[0] == gemma.tokenizer.bos_token_id


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_gate_a1_equals_greedy_generate(gemma, lang):
    ids = gemma.encode(QUESTIONS[lang])
    cfg = RolloutConfig(max_new_tokens=24, greedy=True, hybrid=True, stop="eos")
    dec = Decoder(gemma, [ids], cfg, force_a=lambda t: 1.0)
    ours = dec.run()[0].token_ids
    ref = gemma.model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                               max_new_tokens=24, do_sample=False, eos_token_id=sorted(gemma.eos_ids),
                               pad_token_id=gemma.pad_id)[0, len(ids):].tolist()
    ref = ref[:next((i + 1 for i, t in enumerate(ref) if t in gemma.eos_ids), len(ref))]
    assert ours == ref


def test_hybrid_answers_in_format_and_in_the_question_language(gemma):
    """With a fresh gate (a ~ 1) the base model writes one answer line after the worked example: English right,
    the Chinese question answered in Chinese, the Russian one in Russian (arithmetic aside)."""
    dec = Decoder(gemma, list(QUESTIONS.values()), RolloutConfig(max_new_tokens=48, greedy=True))
    en, zh, ru = dec.run()
    assert en.answer == "19" and en.finish == "answer"
    assert zh.answer is not None and any("\u4e00" <= ch <= "\u9fff" for ch in zh.text)
    assert ru.answer is not None and any("\u0400" <= ch <= "\u04ff" for ch in ru.text)
    assert all(s.hidden_ratio > 0 for s in en.steps if s.thinking)                 # latents mixed in

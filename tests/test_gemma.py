"""Models whose embedding module does more than a lookup (Gemma 3 scales E[x] by sqrt(H)) and that attend through a
sliding window: the decoders, teacher forcing and the prompt of a base model without a chat template.

A tiny random Gemma 3 (4 layers, three of them sliding-window with a window of 8, over SmolLM2's tokenizer) runs
in seconds; the real Gemma 3 270M is under the slow marker (tests/test_gemma_real.py).
Test: pytest tests/test_gemma.py
"""
import pytest
import torch

from hrpo.checkpoint import TERMS, licence_files
from hrpo.config import RolloutConfig
from hrpo.embedded import GEMMA_NOTICE
from hrpo.models import assemble
from hrpo.prompts import SYSTEM_PROMPT, completion_prompt
from hrpo.rollout import Decoder
from hrpo.sampling import input_scale
from hrpo.static_engine import static_supported
from hrpo.teacher_forcing import completion_logprobs, pack

WINDOW = 8


def tiny_gemma(tok):
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig
    config = Gemma3TextConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                              num_attention_heads=4, num_key_value_heads=1, head_dim=16, sliding_window=WINDOW,
                              layer_types=["sliding_attention"] * 3 + ["full_attention"],
                              max_position_embeddings=512, query_pre_attn_scalar=16, tie_word_embeddings=True,
                              bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                              pad_token_id=tok.pad_token_id)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = Gemma3ForCausalLM(config)
        for p in model.parameters():                 # Gemma's own init is near zero: make the logits decisive
            torch.nn.init.normal_(p, std=0.5)
    return model


@pytest.fixture(scope="module")
def gemma(tiny):
    """The tiny Gemma 3 as a HybridModel in fp32 on the CPU, with a fresh gate."""
    tok = tiny.tokenizer
    return assemble(tiny_gemma(tok), tok, "tiny-gemma", torch.device("cpu"), torch.float32, None)


PROMPTS = ["What is 2 + 3? Think about it, then answer after ####.", "Count the apples: 4 and 5 more."]


def test_the_input_scale_is_gemmas_and_one_for_llama(gemma, tiny):
    assert input_scale(gemma.model) == pytest.approx(64 ** 0.5)
    assert input_scale(tiny.model) == 1.0


@pytest.mark.parametrize("prompt", PROMPTS)
def test_gate_a1_equals_greedy_generate_token_for_token(gemma, prompt):
    """Hybrid decoding with the gate forced to a = 1 is plain decoding: the same tokens as transformers'
    greedy generate() (which embeds through Gemma's scaled module), past the sliding window."""
    ids = gemma.tokenizer(prompt)["input_ids"]
    assert len(ids) > WINDOW
    cfg = RolloutConfig(max_new_tokens=40, greedy=True, hybrid=True, stop="eos")
    dec = Decoder(gemma, [ids], cfg, force_a=lambda t: 1.0)
    list(dec.steps())
    ours = dec.traces[0].token_ids
    ref = gemma.model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                               max_new_tokens=40, do_sample=False, eos_token_id=sorted(gemma.eos_ids),
                               pad_token_id=gemma.pad_id)[0, len(ids):].tolist()
    ref = ref[:next((i + 1 for i, t in enumerate(ref) if t in gemma.eos_ids), len(ref))]
    assert len(ours) > WINDOW and ours == ref


def test_without_the_scale_the_tokens_differ(gemma, monkeypatch):
    """The check above can fail: feeding E[x] unscaled (the old decoders) writes other tokens."""
    ids = gemma.tokenizer(PROMPTS[0])["input_ids"]
    cfg = RolloutConfig(max_new_tokens=20, greedy=True, hybrid=False, stop="eos")
    scaled = Decoder(gemma, [ids], cfg)
    list(scaled.steps())
    monkeypatch.setattr("hrpo.rollout.input_scale", lambda model: 1.0)
    unscaled = Decoder(gemma, [ids], cfg)
    list(unscaled.steps())
    assert scaled.traces[0].token_ids != unscaled.traces[0].token_ids


def test_teacher_forcing_reproduces_hybrid_rollout_logprobs(gemma):
    """The loss pass rebuilds s * gate(E[x], h) at thinking positions: the rollout's log-probs, in fp32."""
    cfg = RolloutConfig(max_new_tokens=24, temperature=0.7, top_k=20, seed=3, stop="eos")
    dec = Decoder(gemma, [gemma.tokenizer(p)["input_ids"] for p in PROMPTS] * 2, cfg, keep_latents=True)
    list(dec.steps())
    batch = pack(dec.traces, gemma.pad_id, gemma.device)
    assert batch.thinking.any()
    lp = completion_logprobs(gemma.model, gemma.embeddings, batch, cfg.top_k, cfg.temperature, gate=gemma.gate)
    assert torch.allclose(lp[batch.valid], batch.logprobs[batch.valid], atol=1e-4)


def test_the_static_decoder_declines_sliding_windows(gemma, tiny):
    assert not static_supported(gemma) and static_supported(tiny)


def test_a_base_model_without_a_chat_template_gets_the_completion_prompt(gemma):
    tok = gemma.tokenizer
    saved = tok.chat_template
    tok.chat_template = None
    try:
        question = "Tom has 3 apples. He buys 5 more. How many apples does he have?"
        ids = gemma.encode(question)
        text = tok.decode(ids, skip_special_tokens=True)
        assert ids == tok(completion_prompt(question))["input_ids"]            # with the tokenizer's BOS, if any
        assert SYSTEM_PROMPT in text and "#### 13" in text                       # the instruction, the example
        assert text.endswith("Question: Tom has 3 apples. He buys 5 more. How many apples does he have?\nAnswer:")
    finally:
        tok.chat_template = saved
    assert "<|im_start|>" in tok.decode(gemma.encode("hi"))                      # a chat model keeps its template


def test_gemma_checkpoints_carry_the_gemma_terms(gemma, tiny):
    assert [p.name for p in licence_files(gemma.model)] == ["GEMMA_TERMS.html", "NOTICE"]
    assert licence_files(tiny.model) == []
    notice = (TERMS / "gemma" / "NOTICE").read_text(encoding="utf-8")
    assert notice.startswith(GEMMA_NOTICE)                      # the sentence the Gemma terms ask for, verbatim


@pytest.mark.slow
def test_training_a_gemma_directory_matches_its_rollout_and_ships_the_terms(gemma, tmp_path):
    """Any HF causal LM through the trainer: a saved Gemma 3 directory trains (LoRA on its projections), the
    teacher-forced log-probs equal the rollout's (fp32), and the checkpoint carries NOTICE and the terms."""
    from hrpo.config import TrainConfig
    from hrpo.rundir import latest_checkpoint, read_rows
    from hrpo.trainer import Trainer
    src = tmp_path / "tiny-gemma"
    gemma.model.save_pretrained(src)
    gemma.tokenizer.save_pretrained(src)
    out = tmp_path / "run"
    Trainer(TrainConfig(model=str(src), task="arith", mode="hrpo", group_size=2, batch_prompts=1, max_new_tokens=12,
                        lora_rank=2, lora_alpha=4, steps=1, save_every=1, out=str(out), device="cpu",
                        dtype="float32", stop="eos")).train()
    ck = latest_checkpoint(out)
    assert (ck / "NOTICE").read_text(encoding="utf-8").startswith(GEMMA_NOTICE)
    assert (ck / "GEMMA_TERMS.html").stat().st_size > 100_000
    row = read_rows(out / "metrics.jsonl")[-1]
    assert row["logprob_drift"] < 1e-4, row

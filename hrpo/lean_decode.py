"""LeanDecodeStep: a bf16 Llama one-token decode step on the CPU without module calls, the same logits as the
model's own forward (the eager Decoder runs it where it applies; hrpo/cpu_precision.py has the kernels).
Test: pytest tests/test_fidelity.py -k lean
"""
import torch
import torch.nn.functional as F

from .cpu_precision import GROUPED_EAGER, base_model, compute_dtype, grouped_eager_attention, is_folded


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class LeanDecodeStep:
    """One-token decode step of a Llama-layout model without transformers' module calls (bf16 on CPU).

    Per layer: norm -> one matmul for q, k, v (their weights concatenated) -> rotary -> cache append ->
    grouped_eager_attention -> o_proj -> norm -> one matmul for gate and up -> SiLU * up -> down; the
    model's own norm and rotary modules.  The same operations as the eager model in fewer, wider matmuls:
    the logits equal the model's bit for bit in bf16 (so decoding and teacher forcing still agree), without
    transformers' per-module overhead.  `build`
    returns None where this would not be the model's own computation: fp32 (MKL rounds a wider matrix
    differently; fp16 is not measured), other attention than GROUPED_EAGER, non-Llama layers (biases, q/k
    norms), LoRA adapters not folded by `folded_lora`.  Weights are read when built: build after folding,
    once per decode.
    Test: pytest tests/test_fidelity.py -k lean
    """

    def __init__(self, base):
        cfg = base.config
        self.heads, self.kv = cfg.num_attention_heads, cfg.num_key_value_heads
        self.dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.heads
        self.split = [self.heads * self.dim, self.kv * self.dim, self.kv * self.dim]
        w = lambda lin: lin.get_base_layer().weight if hasattr(lin, "get_base_layer") else lin.weight  # noqa: E731
        self.layers = [(layer.self_attn, layer.input_layernorm, layer.post_attention_layernorm,
                        torch.cat([w(layer.self_attn.q_proj), w(layer.self_attn.k_proj), w(layer.self_attn.v_proj)]),
                        torch.cat([w(layer.mlp.gate_proj), w(layer.mlp.up_proj)]),
                        w(layer.self_attn.o_proj), w(layer.mlp.down_proj)) for layer in base.model.layers]
        self.norm, self.rotary, self.head = base.model.norm, base.model.rotary_emb, w(base.lm_head)

    @classmethod
    def build(cls, model) -> "LeanDecodeStep | None":
        from peft.tuners.lora.layer import LoraLayer
        base = base_model(model)
        cfg = base.config
        plain = (cfg.model_type == "llama" and cfg.hidden_act == "silu" and not getattr(cfg, "attention_bias", False)
                 and not getattr(cfg, "mlp_bias", False)
                 and getattr(cfg, "_attn_implementation", None) == GROUPED_EAGER)
        if not plain or compute_dtype(model) != torch.bfloat16 or base.device.type != "cpu":
            return None
        if any(isinstance(m, LoraLayer) and not is_folded(m) for m in model.modules()):
            return None
        return cls(base)

    def __call__(self, embeds: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache) -> torch.Tensor:
        """embeds (b, 1, H), mask (b, T) the whole attention mask, positions (b, 1); appends to `cache`
        and returns the logits (b, V) in the model's dtype."""
        x, (b, q_len) = embeds, embeds.shape[:2]
        cos, sin = (t.unsqueeze(1) for t in self.rotary(x, positions))          # (b, 1, q, D)
        add = torch.zeros(mask.shape, dtype=x.dtype, device=x.device).masked_fill_(mask == 0, torch.finfo(x.dtype).min)
        add = add[:, None, None, :]                                               # (b, 1, 1, T): eager's mask
        for i, (attn, n1, n2, qkv, gate_up, o, down) in enumerate(self.layers):
            q, k, v = F.linear(n1(x), qkv).split(self.split, -1)
            q = q.view(b, q_len, self.heads, self.dim).transpose(1, 2)
            k = k.view(b, q_len, self.kv, self.dim).transpose(1, 2)
            v = v.view(b, q_len, self.kv, self.dim).transpose(1, 2)
            q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
            keys, values = cache.update(k, v, i)
            out, _ = grouped_eager_attention(attn, q, keys, values, add, attn.scaling)
            x = x + F.linear(out.reshape(b, q_len, -1), o)
            gate, up = F.linear(n2(x), gate_up).chunk(2, -1)
            x = x + F.linear(F.silu(gate) * up, down)
        return F.linear(self.norm(x[:, -1]), self.head)

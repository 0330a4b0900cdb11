"""How the model computes on the CPU in low precision, kept numerically identical between decoding and
teacher forcing: `low_precision` (bf16 with fp32 LoRA adapters), `folded_lora` (adapters folded into their
base weights) and `grouped_eager_attention` (eager attention without copying the KV cache per head); the
bf16 decode step that uses them is hrpo/lean_decode.py.
Test: pytest tests/test_fidelity.py
"""
import contextlib
import types
import weakref

import torch
import torch.nn.functional as F

LOW_PRECISION = (torch.bfloat16, torch.float16)


def base_model(model):
    """The HF model inside peft's wrapper (the model itself without one); its LoRA layers are injected in place."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def compute_dtype(model) -> torch.dtype:
    """The dtype an HF model computes in: that of its input embeddings (LoRA adapters may differ)."""
    return model.get_input_embeddings().weight.dtype


_CASTING_LAYERS = weakref.WeakKeyDictionary()    # model -> its peft layers that cast their own inputs


def casting_layers(model) -> list:
    """The peft layers of `model` that cast their inputs to the adapter dtype, found once per model object:
    walking a LoRA model's ~2500 modules on every call would slow every decode step.  Adapters injected into
    the same object later are not seen: they keep their own (correct, slower) input cast."""
    layers = _CASTING_LAYERS.get(model)
    if layers is None:
        layers = _CASTING_LAYERS[model] = [m for m in model.modules() if hasattr(m, "cast_input_dtype_enabled")]
    return layers


@contextlib.contextmanager
def low_precision(model):
    """Run `model` (an HF causal LM, with or without peft LoRA adapters) in its own bf16/fp16 dtype.

    peft keeps adapter weights in fp32 on a bf16 base and casts every adapter *input* (B, T, H) to fp32
    and the output back: on CPU that was most of a bf16 training step (copies and fp32 matmuls in
    210 adapters per forward).  Inside this context autocast casts the small fp32 adapter weights to
    bf16 instead (once per forward; gradients still reach the fp32 weights) and peft's input cast is
    switched off.  Where no adapter runs its own path (none at all, all disabled as in the reference pass,
    or all folded by `folded_lora`, whose forward casts its rank-r weight itself: rollouts and the loss
    pass) the model is all bf16 and autocast, with its per-operator dispatch, is skipped (the same values:
    tests/test_fidelity.py -k autocast).  Wrap only the model call: the gate and the loss stay outside, in
    fp32.  fp32 models: a no-op.  Test: pytest tests/test_fidelity.py
    """
    dt, layers = compute_dtype(model), casting_layers(model)
    if dt not in LOW_PRECISION or all(is_folded(m) or m.disable_adapters for m in layers):
        yield
        return
    saved = [m.cast_input_dtype_enabled for m in layers]
    try:
        for m in layers:
            m.cast_input_dtype_enabled = False
        with torch.autocast(device_type=model.get_input_embeddings().weight.device.type, dtype=dt):
            yield
    finally:
        for m, v in zip(layers, saved):
            m.cast_input_dtype_enabled = v


def is_folded(layer) -> bool:
    """A peft LoRA layer inside `folded_lora` (its adapter adds nothing to the value; with grad on it carries
    the gradient to A and B)."""
    return getattr(layer.__dict__.get("forward"), "__func__", None) is _folded_forward


class _GhostBranch(torch.autograd.Function):
    """`out` unchanged in value; backward gives u = A x and the B weight the gradient that out + s * B u
    would give them: d/du = s * g B, d/dB = s * g^T u (g = d/d out, passed on to out as it is)."""

    @staticmethod
    def forward(ctx, out, u, weight, scaling):
        ctx.save_for_backward(u, weight)
        ctx.scaling = scaling
        return out.view_as(out)

    @staticmethod
    def backward(ctx, g):
        u, weight = ctx.saved_tensors
        s = ctx.scaling
        du = (g @ weight.to(g.dtype)) * s                                      # (..., r)
        dw = (g.reshape(-1, g.shape[-1]).mT @ u.reshape(-1, u.shape[-1]).to(g.dtype)) * s   # (out, r)
        return g, du.to(u.dtype), dw.to(weight.dtype), None


def _folded_forward(self, x, *args, **kwargs):
    """A peft LoRA Linear under folded_lora: the value from the folded base weight alone; with grad enabled
    each adapter's u = A x (on a detached input) is attached to it by _GhostBranch, which adds nothing to the
    value and never forms s * B u, but gives A and B the gradient the branch would get."""
    out = self.base_layer(x, *args, **kwargs)
    if torch.is_grad_enabled():
        xd = x.detach()                     # d/dx already flows through the folded weight, once
        for a in self.active_adapters:
            if a in self.lora_A:
                A = self.lora_A[a].weight
                u = F.linear(self.lora_dropout[a](xd), A.to(xd.dtype))          # (..., r)
                out = _GhostBranch.apply(out, u, self.lora_B[a].weight, self.scaling[a])
    return out


_FOLDS = weakref.WeakKeyDictionary()    # model -> {LoRA layer: (state key, folded weight)}


def _adapter_state(m) -> tuple:
    """What a LoRA layer's folded weight depends on: its base weight and active adapters, each tensor by
    storage and in-place version (an optimizer step bumps the version)."""
    state = lambda t: (t.data_ptr(), t._version)                                # noqa: E731
    adapters = [a for a in m.active_adapters if a in m.lora_A]
    return (state(m.get_base_layer().weight), m.fan_in_fan_out,
            *((a, state(m.lora_A[a].weight), state(m.lora_B[a].weight), m.scaling[a]) for a in adapters))


def _folded_weight(m) -> torch.Tensor:
    """W + sum of s * B A over m's active adapters, summed in fp32 (one in-place addmm each), in W's dtype."""
    w = m.get_base_layer().weight
    out = w.detach().to(torch.float32, copy=True)
    for a in m.active_adapters:
        if a in m.lora_A:
            A, B = m.lora_A[a].weight.detach().float(), m.lora_B[a].weight.detach().float()
            out.addmm_(*((A.T, B.T) if m.fan_in_fan_out else (B, A)), alpha=m.scaling[a])
    return out.to(w.dtype)


@contextlib.contextmanager
def folded_lora(model):
    """Run a peft LoRA model with every adapter folded into its base weight: one matmul x (W + s B A).

    Each LoRA Linear's base weight is replaced by W + s * B A (summed in fp32, stored in the base dtype,
    as `merge_and_unload` does for inference) for the duration of the context, and its forward returns
    the base layer's output alone; with grad enabled only u = A x (on a detached input) is computed and
    attached to the output by `_GhostBranch`: nothing added to the value, the usual gradient to A and B,
    while the gradient to the input flows once, through the folded weight.  So a rollout decodes the plain
    model (two small matmuls fewer per adapter and step) and the teacher-forced loss pass under the same
    context computes bit for bit the rollout's log-probs, in bf16 too (the adapter path in bf16 and a
    folded, rounded weight do not agree).  The original weight tensors are put back afterwards,
    untouched.  The folded weights are kept (one copy of the adapted weights, for the model's lifetime)
    and reused while the base weights and adapters are unchanged (same storage and version): a training
    step folds once for its rollout and its loss pass, not twice.  Changes that do not bump a tensor's
    version are not seen: writes through `.data` and `fused=True` optimizers (AdamW's default paths, `copy_`
    and `load_state_dict` do bump it).  Not for CUDA-graph decoding (a captured graph keeps the tensors it
    was captured with).  No adapters (or DoRA, merged, disabled or already folded ones): a no-op.
    Test: pytest tests/test_fidelity.py -k folded
    """
    from peft.tuners.lora.layer import Linear as LoraLinear
    from peft.tuners.lora.layer import LoraLayer
    layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
    plain = all(isinstance(m, LoraLinear) and not m.merged and not m.disable_adapters and "forward" not in m.__dict__
                and not any(m.use_dora.values()) for m in layers)
    if not layers or not plain:      # nothing to fold, folded already, or adapters this cannot fold (DoRA, ...)
        yield
        return
    cache, saved = _FOLDS.setdefault(model, {}), []
    try:
        for m in layers:
            w, key = m.get_base_layer().weight, _adapter_state(m)
            if cache.get(m, (None,))[0] != key:
                cache[m] = key, _folded_weight(m)
            saved.append((m, w, w.data))
            w.data = cache[m][1]
            m.forward = types.MethodType(_folded_forward, m)
        yield
    finally:
        for m, w, data in saved:
            w.data = data
            m.__dict__.pop("forward", None)


def grouped_eager_attention(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    """transformers' eager attention without `repeat_kv`: the n_rep query heads that share a KV head are
    stacked as rows of one matmul against that head's keys and values, so the KV cache is never copied.

    query (B, H, q, D), key/value (B, KV, T, D), H = KV * n_rep (head h uses KV head h // n_rep, as
    repeat_kv lays them out); attention_mask (B, 1, q, T) additive.  Same products, softmax in fp32 cast
    back to the query dtype, output (B, q, H, D).  Eager repeats each KV head n_rep times per layer per
    call (SmolLM2: 9 query heads on 3 KV heads); this path never makes that copy.
    Test: pytest tests/test_fidelity.py -k grouped
    """
    B, H, q, D = query.shape
    KV, T = key.shape[1], key.shape[2]
    rep = H // KV
    scores = torch.matmul(query.reshape(B, KV, rep * q, D), key.transpose(2, 3)) * scaling   # (B, KV, rep*q, T)
    if attention_mask is not None:
        scores = (scores.view(B, KV, rep, q, T) + attention_mask[:, :, None, :, :T]).view(B, KV, rep * q, T)
    probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    probs = F.dropout(probs, p=dropout, training=module.training)
    out = torch.matmul(probs, value).view(B, H, q, D)                                      # (B, H, q, D)
    return out.transpose(1, 2).contiguous(), probs.view(B, H, q, T)


def same_attention_path(model, device, dtype) -> None:
    """bf16/fp16 on CPU: eager attention (grouped_eager_attention), so KV-cache decoding and teacher forcing
    agree bit for bit.

    With SDPA the one-token decode step and the whole-sequence pass take different CPU kernels; in bf16
    that alone made the rollout's log-probs and the teacher-forced ones differ, i.e. training went
    off-policy.  The eager path uses the same matmuls in both passes, so the two agree bit for bit.
    fp32 and CUDA keep the model's default attention.
    """
    if torch.device(device).type == "cpu" and dtype in LOW_PRECISION and hasattr(model, "set_attn_implementation"):
        from transformers import AttentionInterface, AttentionMaskInterface
        from transformers.masking_utils import eager_mask
        AttentionInterface.register(GROUPED_EAGER, grouped_eager_attention)
        AttentionMaskInterface.register(GROUPED_EAGER, eager_mask)
        model.set_attn_implementation(GROUPED_EAGER)


GROUPED_EAGER = "hrpo_grouped_eager"

"""The trace file: one decoded trace with what it takes to show it again and to replay it, versioned.

One JSON object (UTF-8, compact separators, keys in this order), written by the app's /export and Share, by
`python -m hrpo generate --json` and `--save FILE`, read by the app's "Open a trace", /load_trace, `?trace=` links
and `python app.py --trace FILE`:

    format      "hrpo-trace"
    version     1 (VERSION); a reader refuses any other
    model       the model spec that decoded it ("default", "checkpoints/smollm2-arith-hrpo", ...); model_mode
                its HybridModel.mode ("base", "hrpo" or "grpo": a GRPO checkpoint decodes plain)
    decoding    every RolloutConfig field (max_new_tokens, temperature, top_k, greedy, hybrid, seed, stop)
    question    the prompt as it was asked (before the model's prompt format and chat template)
    prompt      the templated prompt text; prompt_ids its token ids
    token_ids, text, answer (null: none), finish ("eos" | "answer" | "length"), hybrid, tokens_per_s (decode speed)
    steps       one object per generated token: the fields of hrpo.rollout.Step, then "nearest": the five tokens
                nearest to its latent by cosine, [[token, cosine], ...], at thinking steps with a latent (else []),
                and "shown": its text as the app shows it (readable_pieces)
    tensors     {name: {"dtype", "shape", "b64"}} for the kept per-step tensors: latents and inputs (T, H) as
                float16, top_ids (T, 10) int32, top_probs (T, 10) float16; little-endian, base64

Size: about 4 * H bytes per step for latents and inputs together, base64 adds a third: 128 steps of SmolLM2
(H = 576) are about 0.4 MB.  Floats are written as Python writes them and float16 values are exact in float16,
so dump(load(f)) == f byte for byte.  `load` checks everything a hostile file could get wrong and raises
TraceFileError (one line): not JSON, another format or version, over MAX_BYTES, fields of the wrong type,
steps that disagree with the token ids, tensors of the wrong shape, strings that are not valid Unicode.
Test: pytest tests/test_trace_file.py
"""
import base64
import dataclasses
import json
import math

import numpy as np
import torch

from .config import RolloutConfig
from .errors import ConfigError, TraceFileError
from .rollout import Step, Trace

FORMAT, VERSION = "hrpo-trace", 1
MAX_BYTES = 16 * 2**20            # a file larger than this is refused before it is parsed
MAX_STEPS = 8192
MAX_WIDTH = 16384                 # hidden size or top-k columns of a tensor
MAX_TEXT = 200_000                # characters of any one string
STEP_FIELDS = [f.name for f in dataclasses.fields(Step)]
TENSORS = {"latents": "float16", "inputs": "float16", "top_ids": "int32", "top_probs": "float16"}
TORCH = {"latents": torch.float32, "inputs": torch.float32, "top_ids": torch.long, "top_probs": torch.float32}


@dataclasses.dataclass
class TraceFile:
    """What a trace file holds: the model spec, the decoding settings, the question, the trace and the
    nearest tokens of each step's latent ([] where none)."""
    model: str
    decoding: RolloutConfig
    question: str
    trace: Trace
    nearest: list[list[list]]
    shown: list[str]
    model_mode: str = "base"
    tokens_per_s: float = 0.0


def readable_pieces(steps, decode=None) -> list[str]:
    """Each step's token text for display.  Byte-level tokenizers split a CJK or other multi-byte character
    over several tokens, each of which decodes alone to U+FFFD; with `decode` (token ids -> text) every run of
    such steps is decoded together and its text shown on the run's first step (the others show nothing)."""
    pieces = [s.token for s in steps]
    if decode is None:
        return pieces
    i = 0
    while i < len(steps):
        j = i
        while j < len(steps) and "\ufffd" in steps[j].token and steps[j].thinking == steps[i].thinking:
            j += 1
        if j - i > 1:
            pieces[i:j] = [decode([s.token_id for s in steps[i:j]])] + [""] * (j - i - 1)
        i = max(j, i + 1)
    return pieces


def nearest_tokens(hm, trace: Trace, k: int = 5) -> list[list[list]]:
    """Per step, the k tokens nearest to its latent by cosine ([[token, cosine], ...], HybridModel.nearest) at
    thinking steps with a latent; [] elsewhere."""
    thinking = [s.index for s in trace.steps if s.thinking]
    near = hm.nearest(trace.latents[thinking], k) if trace.latents is not None and thinking else []
    by_step = dict(zip(thinking, near))
    return [[[tok, cos] for tok, cos in by_step.get(s.index, [])] for s in trace.steps]


def of_decode(hm, model: str, dec, question: str) -> TraceFile:
    """The TraceFile of the first trace of a finished decoder `dec` of `hm` (spec `model`), with its own cfg."""
    trace = dec.traces[0]
    return TraceFile(model=model, decoding=dec.cfg, question=question, trace=trace, nearest=nearest_tokens(hm, trace),
                     shown=readable_pieces(trace.steps, hm.tokenizer.decode), model_mode=hm.mode,
                     tokens_per_s=round(float(dec.tokens_per_s), 3))


def encode_tensor(t: torch.Tensor, dtype: str) -> dict:
    arr = t.detach().cpu().float().numpy() if dtype != "int32" else t.detach().cpu().numpy()
    arr = np.ascontiguousarray(arr.astype(np.dtype(dtype).newbyteorder("<")))
    return {"dtype": dtype, "shape": list(arr.shape), "b64": base64.b64encode(arr.tobytes()).decode("ascii")}


def dump(tf: TraceFile) -> str:
    """The file's text (see the module doc)."""
    tr = tf.trace
    steps = [{**dataclasses.asdict(s), "nearest": [[tok, cos] for tok, cos in near], "shown": shown}
             for s, near, shown in zip(tr.steps, tf.nearest, tf.shown, strict=True)]
    obj = {"format": FORMAT, "version": VERSION, "model": tf.model, "model_mode": tf.model_mode,
           "decoding": dataclasses.asdict(tf.decoding), "question": tf.question, "prompt": tr.prompt,
           "prompt_ids": list(tr.prompt_ids), "token_ids": list(tr.token_ids), "text": tr.text, "answer": tr.answer,
           "finish": tr.finish, "hybrid": tr.hybrid, "tokens_per_s": float(tf.tokens_per_s), "steps": steps,
           "tensors": {name: encode_tensor(getattr(tr, name), dtype) for name, dtype in TENSORS.items()
                       if getattr(tr, name) is not None}}
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


# ---------------------------------------------------------------- reading


def _fail(msg: str):
    raise TraceFileError(f"not a usable trace file: {msg}")


def _text(value, name: str, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        _fail(f"{name} must be text")
    if len(value) > MAX_TEXT:
        _fail(f"{name} is longer than {MAX_TEXT} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        _fail(f"{name} holds a lone surrogate (not valid Unicode)")
    return value


def _ids(value, name: str) -> list[int]:
    if not isinstance(value, list) or len(value) > 4 * MAX_STEPS or \
            not all(type(x) is int and 0 <= x < 2**31 for x in value):
        _fail(f"{name} must be a list of token ids")
    return value


def _number(value, name: str) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):
        _fail(f"{name} must be a finite number")
    return float(value)


def _step(d, i: int, token_id: int) -> tuple[Step, list, str]:
    where = f"step {i}"
    if not isinstance(d, dict) or set(d) != {*STEP_FIELDS, "nearest", "shown"}:
        _fail(f"{where} must have exactly the fields {', '.join(STEP_FIELDS)}, nearest, shown")
    if d["index"] != i or d["token_id"] != token_id or type(d["thinking"]) is not bool:
        _fail(f"{where} does not match the token ids (index, token_id) or its thinking flag is not true/false")
    floats = {k: _number(d[k], f"{where} {k}") for k in STEP_FIELDS if k not in ("index", "token", "token_id",
                                                                               "thinking")}
    near = d["nearest"]
    if not isinstance(near, list) or len(near) > 64 or not all(
            isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) and type(p[1]) in (int, float)
            and math.isfinite(p[1]) for p in near):
        _fail(f"{where} nearest must be a list of [token, cosine] pairs")
    for tok, _ in near:
        _text(tok, f"{where} nearest token")
    step = Step(index=i, token=_text(d["token"], f"{where} token"), token_id=token_id, thinking=d["thinking"],
                **floats)
    return step, [list(p) for p in near], _text(d["shown"], f"{where} shown")


def _tensor(d, name: str, rows: int) -> torch.Tensor:
    dtype = TENSORS[name]
    if not isinstance(d, dict) or set(d) != {"dtype", "shape", "b64"} or d["dtype"] != dtype:
        _fail(f"tensor {name} must be {{dtype: {dtype}, shape, b64}}")
    shape = d["shape"]
    if not (isinstance(shape, list) and len(shape) == 2 and all(type(x) is int for x in shape)
            and shape[0] == rows and 0 < shape[1] <= MAX_WIDTH):
        _fail(f"tensor {name} must have one row per step ({rows}) and at most {MAX_WIDTH} columns")
    try:
        raw = base64.b64decode(d["b64"], validate=True) if isinstance(d["b64"], str) else None
    except ValueError:
        raw = None
    np_dtype = np.dtype(dtype).newbyteorder("<")
    if raw is None or len(raw) != shape[0] * shape[1] * np_dtype.itemsize:
        _fail(f"tensor {name}: its data is not {shape[0]} x {shape[1]} {dtype} values in base64")
    arr = np.frombuffer(raw, dtype=np_dtype).reshape(shape)
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        _fail(f"tensor {name} holds NaN or inf")
    return torch.from_numpy(arr.astype(arr.dtype.newbyteorder("="))).to(TORCH[name])


def loads(text: str) -> TraceFile:
    """The TraceFile of a trace file's text; TraceFileError (one line) for anything wrong with it."""
    if len(text) > MAX_BYTES:
        _fail(f"larger than {MAX_BYTES // 2**20} MB")

    def no_constants(name):
        _fail(f"{name} is not a JSON number")
    try:
        obj = json.loads(text, parse_constant=no_constants)
    except (ValueError, RecursionError) as err:
        if isinstance(err, TraceFileError):
            raise
        raise TraceFileError(f"not a usable trace file: not JSON ({str(err).splitlines()[0][:120]})") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        _fail(f"it is not an {FORMAT} file (an exported trace's JSON, format {FORMAT!r})")
    if obj.get("version") != VERSION:
        raise TraceFileError(f"this trace file is version {str(obj.get('version'))[:20]}; this app reads version "
                             f"{VERSION}")
    expected = {"format", "version", "model", "model_mode", "decoding", "question", "prompt", "prompt_ids",
                "token_ids", "text", "answer", "finish", "hybrid", "tokens_per_s", "steps", "tensors"}
    if set(obj) != expected:
        _fail(f"its fields must be {', '.join(sorted(expected))}")
    dec = obj["decoding"]
    if not isinstance(dec, dict) or set(dec) != {f.name for f in dataclasses.fields(RolloutConfig)}:
        _fail("decoding must hold every RolloutConfig field")
    try:
        cfg = RolloutConfig(**dec)
    except (ConfigError, TypeError, ValueError) as err:
        _fail(f"decoding: {str(err).splitlines()[0]}")
    token_ids = _ids(obj["token_ids"], "token_ids")
    steps = obj["steps"]
    if not isinstance(steps, list) or len(steps) != len(token_ids) or len(steps) > MAX_STEPS:
        _fail(f"steps must be a list with one step per token id (at most {MAX_STEPS})")
    if obj["finish"] not in ("eos", "answer", "length") or type(obj["hybrid"]) is not bool:
        _fail("finish must be eos, answer or length, and hybrid true or false")
    if obj["model_mode"] not in ("base", "hrpo", "grpo"):
        _fail("model_mode must be base, hrpo or grpo")
    speed = _number(obj["tokens_per_s"], "tokens_per_s")
    parsed = [_step(d, i, t) for i, (d, t) in enumerate(zip(steps, token_ids))]
    tensors = obj["tensors"]
    if not isinstance(tensors, dict) or not set(tensors) <= set(TENSORS):
        _fail(f"tensors must be an object of {', '.join(TENSORS)}")
    loaded = {name: _tensor(d, name, len(steps)) for name, d in tensors.items()}
    trace = Trace(prompt=_text(obj["prompt"], "prompt"), prompt_ids=_ids(obj["prompt_ids"], "prompt_ids"),
                  token_ids=token_ids, steps=[s for s, _, _ in parsed], text=_text(obj["text"], "text"),
                  answer=_text(obj["answer"], "answer", optional=True), finish=obj["finish"], hybrid=obj["hybrid"],
                  **loaded)
    return TraceFile(model=_text(obj["model"], "model"), decoding=cfg, question=_text(obj["question"], "question"),
                     trace=trace, nearest=[n for _, n, _ in parsed], shown=[t for _, _, t in parsed],
                     model_mode=obj["model_mode"], tokens_per_s=speed)


def read(path) -> TraceFile:
    """loads() of a file: its size is checked before it is read; bytes that are not UTF-8 are refused."""
    from pathlib import Path
    path = Path(path)
    try:
        if not path.is_file():
            _fail(f"{path.name} is not a file")
        if path.stat().st_size > MAX_BYTES:
            _fail(f"larger than {MAX_BYTES // 2**20} MB")
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        _fail("its bytes are not UTF-8 text")
    except OSError as err:
        _fail(f"cannot read it ({err.strerror or err})")
    return loads(text)

"""What every tab shares: the app's state object, one-line user errors, number checks, a slider and
checkbox group that check what the API sends them.

`Studio` is made once at start-up (app.py) and handed to each tab builder: the hosting policy, the model
pool and the training jobs.  `user_error` turns expected failures into one line in the UI (no stack trace).
Test: pytest tests/test_app.py tests/test_hosting.py
"""
import functools
import math
from dataclasses import dataclass

import gradio as gr

from hrpo.config import RolloutConfig
from hrpo.errors import ConfigError, ModelSpecError

from .hosting import Host, ModelPool
from .jobs import JobManager
from .trace_store import TraceStore


@dataclass
class Studio:
    """The app's state, made once at start-up: policy, models, training jobs, shared traces, and the trace the
    page opens on (`python app.py --trace FILE`; None: none)."""
    host: Host
    pool: ModelPool
    jobs: JobManager
    traces: TraceStore
    opening: object = None

    @classmethod
    def create(cls, root, env) -> "Studio":
        jobs = JobManager()                               # $HRPO_RUNS, else runs/ (tests use a temporary one)
        host = Host.from_env(root, jobs.runs_dir, env)
        store = TraceStore(env.get("HRPO_TRACE_STORE") or jobs.runs_dir / ".shared-traces")
        return cls(host=host, pool=ModelPool(host.resolve), jobs=jobs, traces=store)


def one_line(err: BaseException) -> str:
    text = str(err)
    return text.splitlines()[0] if text.strip() else type(err).__name__


def user_error(fn):
    """Expected failures (bad input, a model that cannot load, a full disk) become a one-line gr.Error."""
    @functools.wraps(fn)
    def wrapped(*args, **kw):
        try:
            result = fn(*args, **kw)
            if hasattr(result, "__next__"):
                yield from result
            else:
                yield result
        except (ValueError, ConfigError, ModelSpecError, RuntimeError, OSError, UnicodeError) as err:
            raise gr.Error(one_line(err)) from None
    return wrapped


def number(value, name: str, integer: bool = False):
    """A finite number from a UI field (NaN, inf and empty are refused with a one-line error)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if integer:
        if x != int(x):
            raise ValueError(f"{name} must be a whole number, got {value!r}")
        return int(x)
    return x


def checked_slider(*args, **kw) -> gr.Slider:
    """gr.Slider whose value from the API is checked first: text, null or NaN get the one-line error of `number`
    (gr.Slider would compare a string with its bounds and fail with a TypeError, an empty error in the UI).
    The instance's preprocess is wrapped, not the class subclassed: gradio writes a .pyi stub beside the module
    of any component subclass."""
    slider = gr.Slider(*args, **kw)
    plain = slider.preprocess

    def preprocess(payload):
        try:
            x = number(payload, slider.label or "value")
        except ValueError as err:
            raise gr.Error(one_line(err)) from None
        return plain(x)
    slider.preprocess = preprocess
    return slider


def checked_choices(*args, **kw) -> gr.CheckboxGroup:
    """gr.CheckboxGroup that reads null from the API as no selection (gr.CheckboxGroup fails with a TypeError)."""
    group = gr.CheckboxGroup(*args, **kw)
    plain = group.preprocess
    group.preprocess = lambda payload: plain([] if payload is None else payload)
    return group


def rollout_config(max_new, temperature, top_k, seed, greedy, hybrid) -> RolloutConfig:
    return RolloutConfig(max_new_tokens=number(max_new, "max new tokens", True),
                         temperature=number(temperature, "temperature"), top_k=number(top_k, "top-k", True),
                         greedy=bool(greedy), hybrid=bool(hybrid), seed=number(seed, "seed", True))

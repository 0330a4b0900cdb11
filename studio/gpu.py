"""ZeroGPU: callbacks that do model work run under Hugging Face's `spaces.GPU`, for as long as the request needs.

On a ZeroGPU Space a GPU is attached to the process only while a function decorated with `spaces.GPU` runs,
for at most its `duration` seconds; the `spaces` package is preinstalled there, and its decorator has no
effect elsewhere.  `gpu_task(duration)` is that decorator where `spaces` imports, and the plain function
where it does not (a local run needs no `spaces`).  `duration` is a function of the callback's own
arguments, as `spaces.GPU` accepts, so the GPU is asked for what the request needs:
    seconds = SETUP_S + tokens to decode x S_PER_TOKEN, capped at MAX_DURATION_S
Generators stay generators under the decorator (Live streams).  Decorated functions must return no CUDA
tensors (traces keep their tensors on the CPU: hrpo.rollout / hrpo.static_decoder copy them there).
Test: pytest tests/test_zerogpu.py
"""
import math

try:
    import spaces
except ImportError:                       # not on a Space: the decorator is not needed
    spaces = None

SETUP_S = 20              # a model moved to the GPU, its first CUDA-graph capture, the prompt pass
S_PER_TOKEN = 0.05        # one decode step of one batch; Compare decodes up to BATCH problems per step
BATCH = 16
MAX_DURATION_S = 120      # what one ZeroGPU call may ask for on a free or PRO account


def seconds_for(steps: int) -> int:
    """The GPU time asked for `steps` sequential decode steps, capped at MAX_DURATION_S."""
    return int(min(MAX_DURATION_S, math.ceil(SETUP_S + steps * S_PER_TOKEN)))


def live_seconds(max_new) -> int:
    return seconds_for(int(max_new or 0))


def compare_seconds(n_models: int, problems, max_new, ablation=False) -> int:
    """Each model decodes ceil(problems / BATCH) batches of max_new steps (twice with the latent ablation)."""
    batches = n_models * math.ceil(max(1, int(problems or 1)) / BATCH) * (2 if ablation else 1)
    return seconds_for(batches * int(max_new or 0))


def gpu_task(duration):
    """`spaces.GPU(duration=duration)` where the `spaces` package is importable, else the function itself.
    `duration` takes the decorated function's arguments and returns seconds."""
    def decorate(fn):
        return fn if spaces is None else spaces.GPU(duration=duration)(fn)
    return decorate

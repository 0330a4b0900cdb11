"""ZeroGPU: on a ZeroGPU-like start (SPACE_ID and SPACES_ZERO_GPU set, a stand-in `spaces` package on the
path: tests/stubs/spaces) the app opens on the shipped HRPO checkpoint, every API call that does model work runs
through a `spaces.GPU`-decorated function whose duration grows with the request, results leave that function
picklable and with no CUDA tensor, and training is off.  Without `spaces` the app runs undecorated."""
import importlib
import json
import os
import sys

import pytest

from conftest import ROOT, components, start_app
from test_app import raw_call

pytestmark = [pytest.mark.app, pytest.mark.slow]      # the app in a real process: minutes

gradio_client = pytest.importorskip("gradio_client")
STUBS = ROOT / "tests" / "stubs"
HRPO = "checkpoints/smollm2-arith-hrpo"


def test_durations_grow_with_the_request_and_are_capped():
    from studio import gpu
    assert gpu.live_seconds(16) < gpu.live_seconds(128) < gpu.live_seconds(512) <= gpu.MAX_DURATION_S
    assert gpu.live_seconds(10**6) == gpu.MAX_DURATION_S
    one = gpu.compare_seconds(1, 4, 64)
    assert one < gpu.compare_seconds(2, 4, 64) < gpu.compare_seconds(2, 4, 64, ablation=True)
    assert gpu.compare_seconds(1, 16, 64) < gpu.compare_seconds(1, 17, 64)     # a second batch of problems
    assert gpu.compare_seconds(4, 20, 256, ablation=True) == gpu.MAX_DURATION_S


def test_without_spaces_the_callbacks_are_undecorated(monkeypatch):
    from studio import gpu
    monkeypatch.setattr(gpu, "spaces", None)
    fn = lambda x: x  # noqa: E731
    assert gpu.gpu_task(lambda x: 10)(fn) is fn


def test_with_spaces_the_decorator_is_spaces_gpu(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(STUBS))
    monkeypatch.setenv("SPACES_STUB_LOG", str(tmp_path / "log"))
    sys.modules.pop("spaces", None)
    from studio import gpu
    gpu = importlib.reload(gpu)
    try:
        def stream(n):
            yield from range(n)
        wrapped = gpu.gpu_task(lambda n: gpu.live_seconds(n))(stream)
        assert list(wrapped(3)) == [0, 1, 2]
        assert json.loads((tmp_path / "log").read_text()) == {"fn": "stream", "duration": gpu.live_seconds(3)}
    finally:
        sys.modules.pop("spaces", None)
        importlib.reload(gpu)


def calls(log) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_zero_gpu_space_start(tmp_path):
    log = tmp_path / "gpu.log"
    env = {k: v for k, v in os.environ.items() if k != "HRPO_MODEL"}
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        proc, url = start_app(tmp_path / "app.log", SPACE_ID="someone/hrpo", SPACES_ZERO_GPU="true",
                              HRPO_ALLOW_TRAINING="1", SPACES_STUB_LOG=str(log),
                              PYTHONPATH=f"{ROOT}{os.pathsep}{STUBS}")
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        comp = components(url)
        assert comp["model"]["value"] == HRPO                           # opens on the trained model
        offered = [c[0] if isinstance(c, (list, tuple)) else c for c in comp["model"]["choices"]]
        assert "default" in offered and "tiny-random" not in offered     # the base model stays selectable
        assert "ZeroGPU" in comp["train-off"]["value"]                   # the Train tab says why it is off
        client = gradio_client.Client(url, verbose=False)
        job = client.submit(HRPO, "What is 2 + 3?", 8, 0.5, 50, 0, True, True, api_name="/generate")
        updates = list(job)
        assert "done: 8 tokens" in job.result()[3] and updates
        client.predict(HRPO, "What is 2 + 3?", 24, 0.5, 50, 0, True, True, api_name="/generate")
        summary, *_ = client.predict(HRPO, 2, "force gate a", 1.0, 0.0, 24, 0.5, 50, 0, True, True, api_name="/replay")
        assert "Replay from step 2" in summary
        assert client.predict(HRPO, "step", "off", api_name="/latent_map")["type"] == "plotly"
        client.predict([HRPO], "arith", 1, 16, True, False, api_name="/compare")
        client.predict(["default", HRPO], "arith", 2, 16, True, False, api_name="/compare")
        with pytest.raises(Exception, match="training is switched off"):
            client.predict("default", "arith", "hrpo", 5, 2, 1, 1e-3, 6, "x", api_name="/train_start")
        with pytest.raises(Exception, match="not allowed|not in the list of choices"):   # no GPU asked for
            client.predict(["default", "tiny-random"], "arith", 1, 16, True, False, api_name="/compare")
        # bad requests are refused before a GPU is asked for: nothing more in the log
        assert "max new tokens must be a finite number" in raw_call(url, "generate", [HRPO, "hi", float("nan"), 0.5,
                                                                                       50, 0, True, True])
        with pytest.raises(Exception, match="the prompt is empty"):
            client.predict(HRPO, "  ", 16, 0.5, 50, 0, True, True, api_name="/generate")
        assert "lone surrogate" in raw_call(url, "generate", [HRPO, "a \ud800", 16, 0.5, 50, 0, True, True])
        with pytest.raises(Exception, match="limit here is 2000"):
            client.predict(HRPO, "x" * 2500, 16, 0.5, 50, 0, True, True, api_name="/generate")
        fresh = gradio_client.Client(url, verbose=False)                     # a visitor with no run yet
        with pytest.raises(Exception, match="run a prompt first"):
            fresh.predict(HRPO, 2, "force gate a", 1.0, 0.0, 24, 0.5, 50, 0, True, True, api_name="/replay")
        with pytest.raises(Exception, match="run a prompt on the Live tab first"):
            fresh.predict(HRPO, "step", "off", api_name="/latent_map")
        seen = calls(log)
        names = [c["fn"] for c in seen]
        assert names == ["live_decode", "live_decode", "replay_decode", "map_nearest", "compare_decode",
                         "compare_decode"], seen
        live = [c["duration"] for c in seen if c["fn"] == "live_decode"]
        cmp = [c["duration"] for c in seen if c["fn"] == "compare_decode"]
        assert live[0] < live[1] and cmp[0] < cmp[1], seen
        assert all(0 < c["duration"] <= 120 for c in seen)
    finally:
        proc.terminate()
        proc.wait(timeout=30)

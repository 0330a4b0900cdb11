"""Every callback path of the app through gradio_client, against `python app.py` on localhost."""
import os
import socket
import subprocess
import sys
import time

import pytest

from conftest import ROOT

gradio_client = pytest.importorskip("gradio_client")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(log_path, **env_extra):
    """`python app.py` on a free loopback port; returns (process, url) once the port answers."""
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), **env_extra}
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), "--host", "127.0.0.1"],
                            cwd=ROOT, env=env, stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"http://127.0.0.1:{port}/"
        except OSError:
            time.sleep(0.5)
    proc.kill()
    pytest.fail("the app did not start within 90 s")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    proc, url = start_app(tmp_path_factory.mktemp("app") / "app.log", HRPO_MODEL="tiny-random")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


LIVE = ("tiny-random", "What is 2 + 3?", 12, 0.5, 50, 0, True, True)


def test_streamed_generation_export_and_replay(app_url):
    client = gradio_client.Client(app_url, verbose=False)
    job = client.submit(*LIVE, api_name="/generate")
    updates = list(job)
    assert len(updates) >= 3                                   # streamed: several partial updates
    tokens_html, chart, table, status = job.result()
    assert tokens_html.count("class='tok'") == 12 and "hidden ratio" in tokens_html
    assert chart is not None and len(table["data"]) == 12
    assert table["headers"][:2] == ["step", "token"] and "done: 12 tokens" in status
    json_path, csv_path = client.predict(api_name="/export")
    assert json_path.endswith("trace.json") and open(csv_path).read().startswith("trace")
    summary, orig, new = client.predict("tiny-random", 4, 12, 0.5, 50, 0, True, True, api_name="/replay")
    assert "Replay without latents from step 4" in summary and orig
    fig = client.predict("tiny-random", "hidden_ratio", api_name="/latent_map")
    assert fig["type"] == "plotly"


def test_bad_input_is_one_clear_message(app_url):
    client = gradio_client.Client(app_url, verbose=False)
    with pytest.raises(Exception, match="the prompt is empty"):
        client.predict("tiny-random", "   ", 12, 0.5, 50, 0, True, True, api_name="/generate")
    with pytest.raises(Exception, match="the prompt is too long"):
        client.predict("tiny-random", "x" * 30000, 12, 0.5, 50, 0, True, True, api_name="/generate")
    with pytest.raises(Exception, match="less than minimum"):          # the slider's own bound holds
        client.predict("tiny-random", "hi", 12, 0.0, 50, 0, True, True, api_name="/generate")
    with pytest.raises(Exception, match="unknown model spec"):
        client.predict("no-such-model", "hi", 12, 0.5, 50, 0, True, True, api_name="/generate")


def test_compare(app_url):
    client = gradio_client.Client(app_url, verbose=False)
    lens, acc, scripts, summary, texts = client.predict(["tiny-random", "tiny-random"], "mgsm:en", 2, 16, True,
                                                        api_name="/compare")
    assert lens["type"] == "plotly" and acc["type"] == "plotly" and scripts["type"] == "plotly"
    assert len(summary["data"]) == 2 and len(texts["data"]) == 2


def test_training_start_status_stop(app_url):
    client = gradio_client.Client(app_url, verbose=False)
    status, _ = client.predict("tiny-random", "arith", "hrpo", 200, 2, 1, 1e-3, 6, "apptest", api_name="/train_start")
    assert "running" in status and "apptest" in status
    try:
        with pytest.raises(Exception, match="already running"):
            client.predict("tiny-random", "arith", "grpo", 5, 2, 1, 1e-3, 6, "other", api_name="/train_start")
        deadline = time.time() + 120
        while time.time() < deadline and "step 0/" in client.predict(api_name="/train_status")[0]:
            time.sleep(1)
        assert "step 0/" not in client.predict(api_name="/train_status")[0]
    finally:
        client.predict(api_name="/train_stop")
    deadline = time.time() + 120
    while time.time() < deadline and "running" in client.predict(api_name="/train_status")[0]:
        time.sleep(1)
    final = client.predict(api_name="/train_status")[0]
    assert "stopped" in final
    import shutil
    shutil.rmtree(ROOT / "runs" / "apptest", ignore_errors=True)


def test_hosted_mode_limits(tmp_path):
    proc, url = start_app(tmp_path / "log", HRPO_HOSTED="1", HRPO_MODEL="tiny-random")
    try:
        client = gradio_client.Client(url, verbose=False)
        out = client.predict(*LIVE, api_name="/generate")
        assert "done: 12 tokens" in out[3]
        with pytest.raises(Exception, match="limit here is 2000"):
            client.predict("tiny-random", "x" * 2500, 12, 0.5, 50, 0, True, True, api_name="/generate")
        with pytest.raises(Exception, match="not allowed|not in the list of choices"):   # gradio's check, then ours
            client.predict("default", "hi", 12, 0.5, 50, 0, True, True, api_name="/generate")
        with pytest.raises(Exception, match="training is switched off"):
            client.predict("tiny-random", "arith", "hrpo", 5, 2, 1, 1e-3, 6, "x", api_name="/train_start")
    finally:
        proc.terminate()
        proc.wait(timeout=30)

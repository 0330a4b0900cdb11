"""Every callback path of the app through gradio_client, against `python app.py` on localhost."""
import json
import os
import time

import httpx
import pytest

from bench import app_process as process
from conftest import LIVE, components, raw_call, start_app

pytestmark = [pytest.mark.app, pytest.mark.slow]      # the app in a real process: minutes

gradio_client = pytest.importorskip("gradio_client")


def test_streamed_generation_export_and_replay(app_url):
    client = gradio_client.Client(app_url, verbose=False)
    job = client.submit(*LIVE, api_name="/generate")
    updates = list(job)
    assert len(updates) >= 2                   # streamed: the first token at once, then on a clock (test_hosting)
    tokens_html, chart, table, status = job.result()
    assert tokens_html.count("class='tok'") == 12 and "hidden ratio" in tokens_html
    assert chart is not None and len(table["data"]) == 12
    assert table["headers"][:2] == ["step", "token"] and "done: 12 tokens" in status
    assert "eff. vocab 1/Σp²" in table["headers"]
    assert "effective vocabulary 1/Σp²" in [t["name"] for t in json.loads(chart["plot"])["data"]]
    ev = table["headers"].index("eff. vocab 1/Σp²")
    assert all(1.0 <= row[ev] <= 50.0 for row in table["data"])          # 1/sum(p^2) of a top-50 distribution
    json_path, csv_path = client.predict(api_name="/export")
    assert json_path.endswith("trace.json") and open(csv_path).read().startswith("trace")
    assert "eff_vocab" in open(csv_path).readline()
    fresh = gradio_client.Client(app_url, verbose=False)            # another visitor opens the exported file
    tokens2, chart2, table2, status2 = fresh.predict(gradio_client.handle_file(json_path), api_name="/load_trace")
    assert (tokens2, status2, table2["data"]) == (tokens_html, status, table["data"])
    assert json.loads(chart2["plot"])["data"] == json.loads(chart["plot"])["data"]
    summary, *_ = fresh.predict("tiny-random", 4, "force gate a", 1.0, 0.0, 12, 0.5, 50, 0, True, True,
                                api_name="/replay")                 # replays work on an opened trace
    assert "Replay from step 4" in summary and "no divergence" in summary
    assert fresh.predict("tiny-random", "step", "off", api_name="/latent_map")["type"] == "plotly"   # and the map
    key, link = client.predict(api_name="/share_trace")
    assert link == f"?trace={key}" and len(key) == 32

    before = fresh.predict(api_name="/share_trace")[0]                 # the opened trace is fresh's run state
    for content, says in [("not json", "not JSON"), (json.dumps({"format": "hrpo-trace", "version": 2}),
                                                      "this trace file is version 2")]:
        path = os.path.join(os.path.dirname(json_path), f"bad-{len(content)}.json")
        with open(path, "w", encoding="utf-8") as f:
            f.write(content)
        with pytest.raises(Exception, match=says):
            fresh.predict(gradio_client.handle_file(path), api_name="/load_trace")
    assert fresh.predict(api_name="/share_trace")[0] == before == key  # a bad file changed nothing
    # an upload over 16 MB never reaches the app
    big = httpx.post(app_url + "gradio_api/upload", files={"files": ("big.json", b" " * (17 * 2**20))}, timeout=60)
    assert big.status_code == 413, big.text
    summary, diff, orig, new = client.predict("tiny-random", 4, "force gate a", 1.0, 0.0, 12, 0.5, 50, 0, True, True,
                                              api_name="/replay")
    assert "Replay from step 4 with the gate forced to a = 1" in summary and orig and "original" in diff
    summary, diff, _, _ = client.predict("tiny-random", 2, "force gate a", 0.0, 0.0, 12, 0.5, 50, 0, True, True,
                                         api_name="/replay")
    assert "a = 0" in summary and ("identical" in diff or "diverges at step" in diff)
    summary, _, _, _ = client.predict("tiny-random", 0, "scale the latent", 1.0, 2.5, 12, 0.5, 50, 0, True, True,
                                      api_name="/replay")
    assert "the latent scaled ×2.5" in summary
    summary, _, _, _ = client.predict("tiny-random", 3, "scale the latent", 1.0, 1.0, 24, 0.5, 50, 7, True, True,
                                      api_name="/replay")        # x1 with other sliders: the trace's settings
    assert "no divergence; answer unchanged" in summary, summary
    assert "the sampling controls now differ in max_new_tokens, seed and apply to the next run" in summary
    with pytest.raises(Exception, match=r"step k = 1000000000000 is past the trace \(its steps are 0-11\)"):
        client.predict("tiny-random", 10**12, "force gate a", 1.0, 0.0, 12, 0.5, 50, 0, True, True, api_name="/replay")
    summary, _, _, _ = client.predict("default", 4, "force gate a", 1.0, 0.0, 12, 0.5, 50, 0, True, True,
                                      api_name="/replay")        # another model picked: the trace's model replays
    assert "replayed with `tiny-random`, the model that decoded this trace" in summary and "no divergence" in summary
    fig = client.predict("tiny-random", "hidden_ratio", "fading", api_name="/latent_map")
    assert fig["type"] == "plotly" and '"path"' in fig["plot"]
    fig = client.predict("tiny-random", "step", "off", api_name="/latent_map")
    assert '"path"' not in fig["plot"] and "×" in fig["plot"]          # cluster labels: 'token' ×n


def test_grpo_checkpoint_decodes_plain_and_examples_are_answered(app_url):
    """A GRPO checkpoint's steps all have hidden ratio 0 (it was trained without latents), whatever the hybrid box
    says; the shipped HRPO checkpoint answers Live's English everyday examples greedily with one marker."""
    from studio.live import EXAMPLE_ANSWERS, EXAMPLES, PLAIN_NOTE
    client = gradio_client.Client(app_url, verbose=False)
    _, _, table, status = client.predict("checkpoints/smollm2-arith-grpo", EXAMPLES[0], 64, 0.5, 50, 0, False, True,
                                         api_name="/generate")
    hr = table["headers"].index("hidden ratio")
    assert table["data"] and all(row[hr] == 0 and row[2] is False for row in table["data"])
    assert PLAIN_NOTE in status
    for prompt in EXAMPLES[:4]:
        tokens_html, _, table, status = client.predict("checkpoints/smollm2-arith-hrpo", prompt, 128, 0.5, 50, 0,
                                                       True, True, api_name="/generate")
        completion = "".join(str(row[1]) for row in table["data"])
        assert completion.count("####") == 1, completion
        assert f"answer `'{EXAMPLE_ANSWERS[prompt]}'` (right)" in status and status.endswith("; hybrid")
    _, _, _, status = client.predict("checkpoints/smollm2-arith-hrpo", EXAMPLES[4], 128, 0.5, 50, 0, True, True,
                                     api_name="/generate")          # Janet's ducks: beyond a 135M model
    assert "(**wrong**: the answer is 18)" in status


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


def test_hostile_raw_api_input_is_one_clear_message(app_url):
    out = raw_call(app_url, "generate", ["tiny-random", "hi", 8, 0.5, 50, float("nan"), True, True])
    assert "seed must be a finite number" in out
    out = raw_call(app_url, "generate", ["tiny-random", "hi \ud800 there", 8, 0.5, 50, 0, True, True])
    assert "lone surrogate" in out
    out = raw_call(app_url, "train_start", ["tiny-random", "arith", "hrpo", float("inf"), 2, 1, 1e-3, 6, "x"])
    assert "steps must be a finite number" in out
    for bad in ("abc", None):                       # a slider's value that is no number: one line, not null
        out = raw_call(app_url, "generate", ["tiny-random", "hi", bad, 0.5, 50, 0, True, True])
        assert f"max new tokens must be a number, got {bad!r}" in out, out
    assert "done: 8 tokens" in raw_call(app_url, "generate", ["tiny-random", "hi", "8", 0.5, 50, 0, True, True])
    assert "moving average (steps) must be a finite number" in raw_call(app_url, "dynamics", [[], float("nan")])
    assert "moving average (steps) must be a number" in raw_call(app_url, "dynamics", [[], "abc"])
    out = raw_call(app_url, "dynamics_runs", [None])                  # null: no selection, not an error
    assert "event: complete" in out and "event: error" not in out, out
    api = gradio_client.Client(app_url, verbose=False).view_api(print_info=False, return_format="dict")
    assert set(api["named_endpoints"]) == {                   # the public API; UI-only events stay private
        "/generate", "/export", "/load_trace", "/share_trace", "/replay", "/latent_map", "/compare", "/dynamics",
        "/dynamics_runs", "/train_start", "/train_stop", "/train_resume", "/train_status", "/refresh_models"}


def test_compare(app_url):
    client = gradio_client.Client(app_url, verbose=False)
    lens, acc, scripts, summary, texts = client.predict(["tiny-random", "tiny-random"], "mgsm:en", 2, 16, True, False,
                                                        api_name="/compare")
    assert lens["type"] == "plotly" and acc["type"] == "plotly" and scripts["type"] == "plotly"
    assert len(summary["data"]) == 1 and len(texts["data"]) == 2       # the same spec twice is decoded once
    *_, summary, _ = client.predict(["tiny-random"], "mgsm:en", 2, 16, True, True, api_name="/compare")
    cols = summary["headers"]
    assert {"accuracy_a1", "mean_len_a1", "accuracy_drop"} <= set(cols)
    assert summary["data"][0][cols.index("mean_len_a1")] == 16


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


def test_hosted_mode_limits(tmp_path):
    proc, url = start_app(tmp_path / "log", HRPO_HOSTED="1", HRPO_MODEL="tiny-random")
    try:
        client = gradio_client.Client(url, verbose=False)
        out = client.predict(*LIVE, api_name="/generate")
        assert "done: 12 tokens" in out[3]
        with pytest.raises(Exception, match="limit here is 2000"):
            client.predict("tiny-random", "x" * 2500, 12, 0.5, 50, 0, True, True, api_name="/generate")
        with pytest.raises(Exception, match=r"\(\d+ tokens; the limit here is 1024\)"):   # 1,500 characters
            client.predict("tiny-random", "\U0001d7d8" * 1500, 12, 0.5, 50, 0, True, True, api_name="/generate")
        with pytest.raises(Exception, match="not allowed|not in the list of choices"):   # gradio's check, then ours
            client.predict("default", "hi", 12, 0.5, 50, 0, True, True, api_name="/generate")
        with pytest.raises(Exception, match="training is switched off"):
            client.predict("tiny-random", "arith", "hrpo", 5, 2, 1, 1e-3, 6, "x", api_name="/train_start")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def write_metrics(run, mode, hidden, config="train_config.json"):
    run.mkdir(parents=True)
    (run / config).write_text(json.dumps({"mode": mode}))
    rows = [{"step": s, "reward_mean": s / 10, "accuracy": s / 10, "completion_len_mean": 40 - s, "kl": s / 1000,
             "hidden_ratio_mean": hidden, "hidden_ratio_p10": hidden / 2, "hidden_ratio_p90": hidden * 2}
            for s in range(1, 6)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_opens_on_hrpo_gradio_port_and_training_dynamics(tmp_path):
    """Without HRPO_MODEL: Live opens on the shipped HRPO checkpoint, Compare pre-selects base/GRPO/HRPO,
    tiny-random is not offered; GRADIO_SERVER_PORT alone picks the port; the dynamics view draws runs'
    metrics.jsonl (HRPO and GRPO overlaid) and follows a run as its file grows."""
    runs = tmp_path / "runs"
    write_metrics(runs / "h", "hrpo", 0.1)
    write_metrics(runs / "g", "grpo", 0.0)
    port = process.free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("HRPO_MODEL", "PORT", "HOST")}
    proc, url, _ = process.start_app(env=dict(GRADIO_SERVER_PORT=str(port), HRPO_RUNS=str(runs)), base_env=env,
                                     log=tmp_path / "log", port=0)            # GRADIO_SERVER_PORT alone picks it
    try:
        comp = components(url)
        assert comp["model"]["value"] == "checkpoints/smollm2-arith-hrpo"
        offered = [c[0] if isinstance(c, (list, tuple)) else c for c in comp["model"]["choices"]]
        assert "tiny-random" not in offered and "default" in offered
        assert comp["cmp-models"]["value"] == ["default", "checkpoints/smollm2-arith-grpo",
                                               "checkpoints/smollm2-arith-hrpo"]
        shown = {c[0] if isinstance(c, (list, tuple)) else c for c in comp["dyn-runs"]["choices"]}
        assert {"runs/h", "runs/g"} <= shown
        client = gradio_client.Client(url, verbose=False)
        fig, note = client.predict(["runs/h", "runs/g"], 1, api_name="/dynamics")
        plot = json.loads(fig["plot"])
        names = {t.get("name") for t in plot["data"]}
        assert {"runs/h (HRPO)", "runs/g (GRPO)", "runs/h (HRPO) p10-p90"} <= names
        assert "2 of" in note and "runs shown" in note
        with open(runs / "h" / "metrics.jsonl", "a") as f:               # the run goes on: the curve grows
            f.write(json.dumps({"step": 6, "reward_mean": 0.9, "hidden_ratio_mean": 0.2}) + "\n")
        fig, _ = client.predict(["runs/h"], 1, api_name="/dynamics")
        line = next(t for t in json.loads(fig["plot"])["data"] if t.get("name") == "runs/h (HRPO)")
        assert list(line["x"]) == [1, 2, 3, 4, 5, 6]
        fig, note = client.predict([], 1, api_name="/dynamics")
        assert "No runs with metrics selected" in fig["plot"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_quiet_queue_slows_gradios_idle_polling():
    """app.quiet_queue sets the interval gradio's queue loop sleeps when it has no job to start (1 ms by default,
    taking the GIL from the decoder 1000 times a second); the loop must still read that attribute."""
    import inspect

    import gradio as gr
    from gradio import queueing

    import app
    with gr.Blocks() as demo:
        gr.Markdown("x")
    demo.queue()
    before = demo._queue.sleep_when_free                 # 0.001 s (0.05 s on Windows)
    app.quiet_queue(demo)
    assert demo._queue.sleep_when_free == max(before, app.QUEUE_POLL_S)
    assert "asyncio.sleep(self.sleep_when_free)" in inspect.getsource(queueing.Queue.start_processing)

"""HRPO studio: the Gradio app (layout and callbacks only; the work happens in hrpo/ and analysis/).

Tabs: Live reasoning (streamed tokens shaded by hidden ratio, gate chart, per-step latent
neighbours, step details, trace download, counterfactual replay), Latent map (UMAP of the trace's
latents among token embeddings), Compare (base vs GRPO vs HRPO on the same prompts), Train
(one background job, live curves, stop and resume).
Run: python app.py [--port 7860] [--model SPEC].  Hosted mode: HRPO_HOSTED=1 (or on a Space):
limits on prompt length, new tokens and concurrency, only checkpoints under checkpoints/,
training only with HRPO_ALLOW_TRAINING=1, the model from HRPO_MODEL.
Test: pytest tests/test_app.py tests/test_browser.py
"""
import argparse
import html
import os
import tempfile
import threading
import time
from pathlib import Path

import gradio as gr
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analysis import export, maps, projections, replay, report
from hrpo.config import ConfigError, RolloutConfig, TrainConfig
from hrpo.jobs import JobManager
from hrpo.models import ModelSpecError, available_models, load_model, resolve_allowed
from hrpo.rollout import Decoder

ROOT = Path(__file__).resolve().parent
HOSTED = os.environ.get("HRPO_HOSTED") == "1" or bool(os.environ.get("SPACE_ID"))
ALLOW_TRAINING = not HOSTED or os.environ.get("HRPO_ALLOW_TRAINING") == "1"
DEFAULT_MODEL = os.environ.get("HRPO_MODEL", "default")
MAX_PROMPT_CHARS = 2000 if HOSTED else 20000
MAX_NEW_TOKENS = 512 if HOSTED else 2048
EXAMPLES = [
    "Tom has 12 marbles. He buys 7 more. How many marbles does Tom have now?",
    "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her "
    "friends every day with four. She sells the remainder for $2 per egg. How much does she make every day?",
    "小明有5个苹果，又买了3个。他现在有几个苹果？",
    "Marie hat 4 Äpfel und kauft 6 dazu. Wie viele Äpfel hat sie jetzt?",
    "У Маши 9 конфет, она съела 4. Сколько конфет осталось?",
    "Juan tiene 8 lápices y regala 3. ¿Cuántos lápices le quedan?",
]


class ModelPool:
    """Loaded models by spec, loaded once (thread-safe); the default loads in the background at start."""

    def __init__(self):
        self.models, self.lock, self.status = {}, threading.Lock(), {}

    def get(self, spec: str):
        with self.lock:
            if spec not in self.models:
                self.status[spec] = "loading"
                try:
                    self.models[spec] = load_model(resolve_allowed(spec, ROOT, HOSTED, DEFAULT_MODEL))
                    self.status[spec] = "ready"
                except Exception:
                    self.status[spec] = "failed"
                    raise
            return self.models[spec]

    def preload(self, spec: str) -> None:
        threading.Thread(target=lambda: self._quiet_get(spec), daemon=True).start()

    def _quiet_get(self, spec):
        try:
            self.get(spec)
        except Exception as err:  # shown in the status line
            self.status[spec] = f"failed: {err}"

    def line(self, spec: str) -> str:
        st = self.status.get(spec, "not loaded")
        return {"ready": f"**{spec}**: ready", "loading": f"**{spec}**: loading..."}.get(st, f"**{spec}**: {st}")


POOL = ModelPool()
JOBS = JobManager(ROOT / "runs")


def model_choices() -> list[str]:
    return available_models(ROOT, HOSTED, DEFAULT_MODEL)


def user_error(fn):
    """Turn expected failures into a one-line message in the UI (no stack traces)."""
    def wrapped(*args, **kw):
        try:
            result = fn(*args, **kw)
            if hasattr(result, "__next__"):
                yield from result
            else:
                yield result
        except (ValueError, ConfigError, ModelSpecError, RuntimeError, OSError) as err:
            raise gr.Error(str(err).splitlines()[0] if str(err) else type(err).__name__)
    wrapped.__name__ = fn.__name__
    return wrapped


# ------------------------------------------------------------------------------------ live tab

def tokens_html(steps) -> str:
    """Tokens as spans shaded by hidden ratio (orange = more latent); the answer part is underlined."""
    top = max((s.hidden_ratio for s in steps), default=0.0) or 1.0
    spans = []
    for s in steps:
        alpha = 0.08 + 0.8 * s.hidden_ratio / top if s.thinking else 0.0
        style = f"background: rgba(255,140,0,{alpha:.3f});" + ("" if s.thinking else "text-decoration: underline;")
        tip = f"step {s.index}: a={s.gate_a:.4f} hidden={s.hidden_ratio:.4f} H={s.entropy:.2f}"
        text = html.escape(s.token).replace("\n", "↵<br>")
        spans.append(f"<span class='tok' title='{tip}' style='{style}'>{text}</span>")
    legend = (f"<div class='legend'>shading: hidden ratio 0 … {top:.4f} (orange = more latent); "
              f"underlined = after the answer marker</div>")
    return f"<div class='tokens'>{''.join(spans)}</div>{legend}"


def gate_figure(steps) -> go.Figure:
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    idx = [s.index for s in steps]
    fig.add_trace(go.Scatter(x=idx, y=[s.gate_a for s in steps], name="gate a (mean over H)"), secondary_y=False)
    fig.add_trace(go.Scatter(x=idx, y=[s.hidden_ratio for s in steps], name="hidden ratio √(1-a²)"),
                  secondary_y=True)
    fig.update_layout(height=300, margin=dict(l=40, r=40, t=30, b=30), title="Gate per step",
                      legend=dict(orientation="h", y=-0.25))
    fig.update_xaxes(title_text="step")
    return fig


def step_rows(hm, trace) -> list[list]:
    proj = projections.trace_projections(hm, trace, k=5, sources=("latent",))
    near = {r.step: r.latent for r in projections.projection_table(proj).itertuples()} if not proj.empty else {}
    return [[s.index, s.token, s.thinking, round(s.gate_a, 5), round(s.hidden_ratio, 5), round(s.entropy, 3),
             near.get(s.index, "")] for s in trace.steps]


STEP_HEADERS = ["step", "token", "thinking", "gate a", "hidden ratio", "entropy", "latent nearest (cosine)"]


def check_prompt(prompt: str, max_new: int) -> None:
    if not prompt or not prompt.strip():
        raise ValueError("the prompt is empty")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ValueError(f"the prompt is too long ({len(prompt)} characters; the limit here is {MAX_PROMPT_CHARS})")
    if max_new > MAX_NEW_TOKENS:
        raise ValueError(f"at most {MAX_NEW_TOKENS} new tokens here")


def rollout_config(max_new, temperature, top_k, seed, greedy, hybrid) -> RolloutConfig:
    return RolloutConfig(max_new_tokens=int(max_new), temperature=float(temperature), top_k=int(top_k),
                         greedy=bool(greedy), hybrid=bool(hybrid), seed=int(seed))


@user_error
def run_live(model, prompt, max_new, temperature, top_k, seed, greedy, hybrid):
    check_prompt(prompt, int(max_new))
    cfg = rollout_config(max_new, temperature, top_k, seed, greedy, hybrid)
    hm = POOL.get(model)
    dec = Decoder(hm, [prompt], cfg, keep_states=True)
    steps, t0 = [], time.perf_counter()
    for i, events in enumerate(dec.steps()):
        steps += [s for _, s in events]
        if i % 2 == 0:
            status = f"generating… {len(steps)} tokens, {len(steps) / (time.perf_counter() - t0):.1f} tokens/s"
            yield tokens_html(steps), gate_figure(steps) if i % 8 == 0 else gr.skip(), gr.skip(), None, status
    trace = dec.traces[0]
    status = (f"done: {len(trace.token_ids)} tokens ({sum(s.thinking for s in trace.steps)} thinking), "
              f"answer `{trace.answer!r}`, {dec.tokens_per_s:.1f} tokens/s, finish: {trace.finish}")
    yield tokens_html(trace.steps), gate_figure(trace.steps), step_rows(hm, trace), trace, status


def step_details(model, trace, evt: gr.SelectData):
    if trace is None:
        return "Run a prompt first."
    k = int(evt.index[0]) if isinstance(evt.index, (list, tuple)) else int(evt.index)
    s = trace.steps[k]
    proj = projections.trace_projections(POOL.get(model), trace, k=8, steps=[k])
    lines = [f"### Step {k}: {s.token!r}", f"thinking: {s.thinking} · gate a {s.gate_a:.5f} · hidden ratio "
             f"{s.hidden_ratio:.5f} · entropy {s.entropy:.3f} · log-prob {s.logprob:.3f}"]
    names = {"latent": "Latent h nearest tokens (cosine)", "input": "Mixed input embedding nearest tokens (cosine)",
             "logit_lens": "Logit lens: most likely next tokens (probability)"}
    for source, title in names.items():
        rows = proj[proj["source"] == source]
        if not rows.empty:
            lines.append(f"**{title}**: " + ", ".join(f"`{t!r}` {v:.3f}" for t, v in zip(rows["token"], rows["score"])))
    return "\n\n".join(lines)


@user_error
def download_trace(trace):
    if trace is None:
        raise ValueError("run a prompt first")
    out = Path(tempfile.mkdtemp(prefix="hrpo-trace-"))
    (out / "trace.json").write_text(export.traces_to_json([trace]), encoding="utf-8")
    (out / "trace.csv").write_text(export.traces_to_csv([trace]), encoding="utf-8")
    return str(out / "trace.json"), str(out / "trace.csv")


@user_error
def run_replay(model, trace, k, max_new, temperature, top_k, seed, greedy, hybrid):
    if trace is None:
        raise ValueError("run a prompt first")
    cfg = rollout_config(max_new, temperature, top_k, seed, greedy, hybrid)
    _, d = replay.replay(POOL.get(model), trace, cfg, int(k))
    where = "no divergence" if d["first_diff"] is None else f"first different token at step {d['first_diff']}"
    summary = (f"**Replay without latents from step {int(k)}**: {where}; answer {d['orig_answer']!r} → "
               f"{d['new_answer']!r}; length {d['orig_len']} → {d['new_len']}")
    return summary, d["orig_text"], d["new_text"]


# ------------------------------------------------------------------------------- map / compare

@user_error
def run_map(model, trace, color):
    if trace is None:
        raise ValueError("run a prompt on the Live tab first")
    if trace.latents is None:
        raise ValueError("this trace has no latents (hybrid decoding was off)")
    frame = maps.trace_map(POOL.get(model), trace)
    return maps.map_figure(frame, color, title=f"Latent map ({frame.attrs.get('method', '')})")


@user_error
def run_compare(specs, task, limit, max_new, greedy):
    if not specs:
        raise ValueError("pick at least one model")
    if HOSTED and (int(limit) > 20 or int(max_new) > 256):
        raise ValueError("hosted mode: at most 20 problems and 256 new tokens")
    cfg = RolloutConfig(max_new_tokens=int(max_new), greedy=bool(greedy))
    tables, _ = report.run_compare(specs, task, int(limit), cfg, load=lambda s: POOL.get(s))
    figs = report.report_figures(tables)
    tr = tables["traces"]
    side = tr.pivot_table(index="trace", columns="model", values="text", aggfunc="first", sort=False).reset_index()
    return (figs["Completion length"], figs["Accuracy"], figs["Script mix"], tables["summary"].round(4), side)


# --------------------------------------------------------------------------------- train tab

def curves_figure(metrics: list[dict]) -> go.Figure:
    keys = [("reward_mean", "reward"), ("accuracy", "accuracy"), ("completion_len_mean", "completion length"),
            ("hidden_ratio_mean", "hidden ratio"), ("kl", "KL")]
    fig = make_subplots(rows=1, cols=len(keys), subplot_titles=[t for _, t in keys])
    steps = [m["step"] for m in metrics]
    for i, (k, t) in enumerate(keys, start=1):
        fig.add_trace(go.Scatter(x=steps, y=[m.get(k) for m in metrics], name=t, showlegend=False), row=1, col=i)
    fig.update_layout(height=260, margin=dict(l=30, r=10, t=40, b=30))
    return fig


def train_status():
    st = JOBS.status()
    if st["state"] == "idle":
        return "No training job yet.", curves_figure([])
    eta = f", ETA {st['eta_s'] / 60:.1f} min" if st.get("eta_s") else ""
    line = (f"**{st['state']}**: {st['mode']} on {st['model']} / {st['task']}: step {st['step']}/{st['steps']}{eta} "
            f"· output `{st['out']}`")
    if st["state"] == "failed":
        line += "\n\n```\n" + st["log_tail"][-600:] + "\n```"
    return line, curves_figure(st["metrics"])


@user_error
def start_training(model, task, mode, steps, group, batch, lr, max_new, name):
    if not ALLOW_TRAINING:
        raise ValueError("training is switched off on this host")
    name = "".join(c for c in (name or "").strip() if c.isalnum() or c in "-_") or f"{mode}-{int(time.time())}"
    cfg = TrainConfig(model=resolve_allowed(model, ROOT, HOSTED, DEFAULT_MODEL), task=task, mode=mode,
                      steps=int(steps), group_size=int(group), batch_prompts=int(batch), lr=float(lr),
                      max_new_tokens=int(max_new), out=str(ROOT / "runs" / name))
    JOBS.start(cfg)
    return train_status()


@user_error
def stop_training():
    if not JOBS.stop():
        raise ValueError("no training job is running")
    return train_status()


@user_error
def resume_training():
    JOBS.resume()
    return train_status()


# -------------------------------------------------------------------------------------- layout

CSS = """
.tokens {font-family: ui-monospace, monospace; font-size: 15px; line-height: 1.9; white-space: pre-wrap;}
.tok {border-radius: 3px; padding: 1px 0;}
.legend {font-size: 12px; color: #777; margin-top: 6px;}
"""


def build() -> gr.Blocks:
    choices = model_choices()
    with gr.Blocks(title="HRPO studio") as demo:
        trace_state = gr.State(None)
        gr.Markdown("# HRPO studio\nHybrid latent reasoning: while the model reasons (until it writes `####`), each "
                    "token's embedding is mixed with a probability-weighted latent through a learned gate.")
        with gr.Row():
            model = gr.Dropdown(choices, value=DEFAULT_MODEL if DEFAULT_MODEL in choices else choices[0],
                                label="Model", allow_custom_value=not HOSTED, scale=3)
            refresh = gr.Button("↻ models", scale=0, min_width=90)
            status = gr.Markdown(POOL.line(DEFAULT_MODEL), elem_id="model-status")
        with gr.Tab("Live reasoning"):
            prompt = gr.Textbox(label="Prompt", lines=3, value=EXAMPLES[0], elem_id="prompt")
            gr.Examples(EXAMPLES, inputs=[prompt])
            with gr.Accordion("Sampling", open=False):
                with gr.Row():
                    max_new = gr.Slider(8, MAX_NEW_TOKENS, value=128, step=8, label="max new tokens")
                    temperature = gr.Slider(0.05, 1.5, value=0.5, step=0.05, label="temperature τ")
                    top_k = gr.Slider(0, 200, value=50, step=1, label="top-k (0 = all)")
                    seed = gr.Number(0, label="seed", precision=0)
                with gr.Row():
                    greedy = gr.Checkbox(True, label="greedy")
                    hybrid = gr.Checkbox(True, label="hybrid (latent mixing)")
            run = gr.Button("Run", variant="primary", elem_id="run")
            run_status = gr.Markdown(elem_id="run-status")
            tokens = gr.HTML(elem_id="tokens")
            chart = gr.Plot(label="Gate", elem_id="gate-chart")
            table = gr.Dataframe(headers=STEP_HEADERS, label="Steps (select a row for details)", interactive=False,
                                 wrap=True, max_height=320)
            details = gr.Markdown()
            with gr.Row():
                json_file = gr.File(label="trace.json")
                csv_file = gr.File(label="trace.csv")
                dl = gr.Button("Export trace")
            with gr.Row():
                k = gr.Number(0, label="replay from step", precision=0)
                replay_btn = gr.Button("Replay from this step without latents")
            replay_md = gr.Markdown()
            with gr.Row():
                orig_text = gr.Textbox(label="original", lines=6)
                new_text = gr.Textbox(label="replay", lines=6)
        with gr.Tab("Latent map"):
            color = gr.Radio(["step", "hidden_ratio"], value="step", label="colour by")
            map_btn = gr.Button("Map the current trace")
            map_plot = gr.Plot()
        with gr.Tab("Compare"):
            specs = gr.CheckboxGroup(choices, value=choices[:3], label="Models")
            with gr.Row():
                task = gr.Dropdown(["arith", "gsm8k", *[f"mgsm:{x}" for x in "en zh ja ru de fr es bn te th sw".split()]],
                                   value="arith", label="Task", allow_custom_value=not HOSTED)
                limit = gr.Slider(1, 100, value=8, step=1, label="problems")
                cmp_new = gr.Slider(16, 512, value=96, step=16, label="max new tokens")
                cmp_greedy = gr.Checkbox(True, label="greedy")
            cmp_btn = gr.Button("Compare", variant="primary")
            with gr.Row():
                len_plot, acc_plot = gr.Plot(), gr.Plot()
            script_plot = gr.Plot()
            summary = gr.Dataframe(label="Summary")
            texts = gr.Dataframe(label="Completions side by side", wrap=True, max_height=400)
        with gr.Tab("Train", visible=ALLOW_TRAINING):
            with gr.Row():
                t_model = gr.Dropdown(choices, value=choices[0], label="Base model")
                t_task = gr.Dropdown(["arith", "gsm8k"], value="arith", label="Task", allow_custom_value=True)
                t_mode = gr.Radio(["hrpo", "grpo"], value="hrpo", label="Mode")
                t_name = gr.Textbox(label="Run name", placeholder="my-run")
            with gr.Row():
                t_steps = gr.Number(50, label="steps", precision=0)
                t_group = gr.Number(8, label="group size G", precision=0)
                t_batch = gr.Number(1, label="prompts per step", precision=0)
                t_lr = gr.Number(1e-4, label="LoRA lr")
                t_new = gr.Number(64, label="max new tokens", precision=0)
            with gr.Row():
                start_b, stop_b, resume_b = gr.Button("Start", variant="primary"), gr.Button("Stop"), gr.Button("Resume")
            t_status = gr.Markdown(elem_id="train-status")
            t_plot = gr.Plot()
            timer = gr.Timer(2.0)
        # events
        live_inputs = [model, prompt, max_new, temperature, top_k, seed, greedy, hybrid]
        run.click(run_live, live_inputs, [tokens, chart, table, trace_state, run_status], api_name="generate")
        table.select(step_details, [model, trace_state], details)
        dl.click(download_trace, [trace_state], [json_file, csv_file], api_name="export")
        replay_btn.click(run_replay, [model, trace_state, k, max_new, temperature, top_k, seed, greedy, hybrid],
                         [replay_md, orig_text, new_text], api_name="replay")
        map_btn.click(run_map, [model, trace_state, color], map_plot, api_name="latent_map")
        cmp_btn.click(run_compare, [specs, task, limit, cmp_new, cmp_greedy],
                      [len_plot, acc_plot, script_plot, summary, texts], api_name="compare")
        train_inputs = [t_model, t_task, t_mode, t_steps, t_group, t_batch, t_lr, t_new, t_name]
        start_b.click(start_training, train_inputs, [t_status, t_plot], api_name="train_start")
        stop_b.click(stop_training, None, [t_status, t_plot], api_name="train_stop")
        resume_b.click(resume_training, None, [t_status, t_plot], api_name="train_resume")
        timer.tick(train_status, None, [t_status, t_plot], api_name="train_status")
        model.change(lambda m: POOL.line(m), model, status, api_name=False)
        refresh.click(lambda: [gr.Dropdown(choices=model_choices())] * 2 + [gr.CheckboxGroup(choices=model_choices())],
                      None, [model, t_model, specs], api_name="refresh_models")
        gr.Timer(1.0).tick(lambda m: POOL.line(m), model, status, api_name=False)
    return demo


def main() -> None:
    parser = argparse.ArgumentParser(description="HRPO studio app")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 7860)))
    parser.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0" if HOSTED else "127.0.0.1"))
    args = parser.parse_args()
    POOL.preload(DEFAULT_MODEL)
    demo = build()
    demo.queue(default_concurrency_limit=2 if HOSTED else 4, max_size=64 if HOSTED else None)
    demo.launch(server_name=args.host, server_port=args.port, css=CSS, theme=gr.themes.Soft(), show_error=False)


if __name__ == "__main__":
    main()

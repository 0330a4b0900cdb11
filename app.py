"""HRPO studio: the Gradio app (layout and callbacks only; the work happens in hrpo/ and analysis/).

Tabs: Live reasoning (streamed tokens shaded by hidden ratio, gate / entropy / effective-vocabulary
chart, per-step latent neighbours, step details, trace download, gate counterfactuals from step k),
Latent map (UMAP of the trace's latents among token embeddings), Compare (base vs GRPO vs HRPO on the
same prompts, optional latent ablation), Training dynamics (metrics.jsonl of shipped checkpoints and
runs, like the paper's Fig. 4), Train (one background job, live curves, stop and resume).
Opens on the shipped HRPO checkpoint (HRPO_MODEL, when set, decides; always in hosted mode).
Run: python app.py [--port 7860] [--host 127.0.0.1]; without them GRADIO_SERVER_PORT / GRADIO_SERVER_NAME,
then PORT / HOST apply.  Hosted mode: HRPO_HOSTED=1 (or on a Space):
limits on prompt length, new tokens and concurrency, only checkpoints under checkpoints/,
training only with HRPO_ALLOW_TRAINING=1, the model from HRPO_MODEL.
Test: pytest tests/test_app.py tests/test_browser.py
"""
import argparse
import os
import time
from pathlib import Path

import gradio as gr

from analysis import dynamics, export, maps, plots, projections, replay, report
from hrpo.config import ConfigError, RolloutConfig, TrainConfig
from hrpo.jobs import JobManager
from hrpo.models import ModelPool, ModelSpecError, available_models, resolve_allowed
from hrpo.rollout import Decoder

ROOT = Path(__file__).resolve().parent
HOSTED = os.environ.get("HRPO_HOSTED") == "1" or bool(os.environ.get("SPACE_ID"))
ALLOW_TRAINING = not HOSTED or os.environ.get("HRPO_ALLOW_TRAINING") == "1"
DEFAULT_MODEL = os.environ.get("HRPO_MODEL", "default")
MAX_PROMPT_CHARS = 2000 if HOSTED else 20000
MAX_NEW_TOKENS = 512 if HOSTED else 2048
# hosted /compare work per request: distinct models, problems, new tokens, and models x problems x tokens
COMPARE_LIMITS = dict(models=4, problems=20, new_tokens=256, tokens=8192) if HOSTED else None
EXAMPLES = [
    "Tom has 12 marbles. He buys 7 more. How many marbles does Tom have now?",
    "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her "
    "friends every day with four. She sells the remainder for $2 per egg. How much does she make every day?",
    "小明有5个苹果，又买了3个。他现在有几个苹果？",
    "Marie hat 4 Äpfel und kauft 6 dazu. Wie viele Äpfel hat sie jetzt?",
    "У Маши 9 конфет, она съела 4. Сколько конфет осталось?",
    "Juan tiene 8 lápices y regala 3. ¿Cuántos lápices le quedan?",
]


POOL = ModelPool(lambda spec: resolve_allowed(spec, ROOT, HOSTED, DEFAULT_MODEL))
JOBS = JobManager()                                   # $HRPO_RUNS, else runs/ (tests use a temporary one)
SHIPPED = {"hrpo": "checkpoints/smollm2-arith-hrpo", "grpo": "checkpoints/smollm2-arith-grpo"}


def model_choices() -> list[str]:
    """The pickers' specs; tiny-random (a test fixture) only when it is the configured HRPO_MODEL."""
    return [m for m in available_models(ROOT, HOSTED, DEFAULT_MODEL) if m != "tiny-random" or m == DEFAULT_MODEL]


def live_default(choices: list[str]) -> str:
    """Live opens on the shipped HRPO checkpoint, unless HRPO_MODEL is set or the app is hosted."""
    if not HOSTED and "HRPO_MODEL" not in os.environ and SHIPPED["hrpo"] in choices:
        return SHIPPED["hrpo"]
    return DEFAULT_MODEL if DEFAULT_MODEL in choices else choices[0]


def compare_default(choices: list[str]) -> list[str]:
    """Compare pre-selects base, GRPO and HRPO (what exists of them)."""
    return [m for m in ("default", SHIPPED["grpo"], SHIPPED["hrpo"]) if m in choices] or choices[:3]


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

def step_rows(hm, trace) -> list[list]:
    proj = projections.trace_projections(hm, trace, k=5, sources=("latent",))
    near = {r.step: r.latent for r in projections.projection_table(proj).itertuples()} if not proj.empty else {}
    return [[s.index, s.token, s.thinking, round(s.gate_a, 5), round(s.hidden_ratio, 5), round(s.entropy, 3),
             round(s.eff_vocab, 2), near.get(s.index, "")] for s in trace.steps]


STEP_HEADERS = ["step", "token", "thinking", "gate a", "hidden ratio", "entropy", "eff. vocab 1/Σp²",
                "latent nearest (cosine)"]


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
            chart = plots.live_step_figure(steps) if i % 8 == 0 else gr.skip()
            yield plots.tokens_html(steps, hm.tokenizer.decode), chart, gr.skip(), None, status
    trace = dec.traces[0]
    status = (f"done: {len(trace.token_ids)} tokens ({sum(s.thinking for s in trace.steps)} thinking), "
              f"answer `{trace.answer!r}`, {dec.tokens_per_s:.1f} tokens/s, finish: {trace.finish}")
    yield (plots.tokens_html(trace.steps, hm.tokenizer.decode), plots.live_step_figure(trace.steps), step_rows(hm, trace),
           trace, status)


def step_details(model, trace, evt: gr.SelectData):
    """The selected step's details; it also becomes the counterfactual's step k."""
    if trace is None:
        return "Run a prompt first.", gr.skip()
    k = int(evt.index[0]) if isinstance(evt.index, (list, tuple)) else int(evt.index)
    return projections.step_markdown(POOL.get(model), trace, k), k


@user_error
def download_trace(trace):
    if trace is None:
        raise ValueError("run a prompt first")
    return export.write_trace_files(trace, export.export_dir())


COUNTERFACTUALS = ["force gate a", "scale the latent"]


@user_error
def run_replay(model, trace, k, what, a, scale, max_new, temperature, top_k, seed, greedy, hybrid):
    """Re-decode with the gate forced to a (1 = tokens only, 0 = latent only) or the latent h scaled, from step k."""
    if trace is None:
        raise ValueError("run a prompt first")
    if not trace.hybrid or not hybrid:
        raise ValueError("gate counterfactuals need hybrid decoding (tick 'hybrid' and run again)")
    if what not in COUNTERFACTUALS:
        raise ValueError(f"choose one of: {', '.join(COUNTERFACTUALS)}")
    cfg = rollout_config(max_new, temperature, top_k, seed, greedy, hybrid)
    k = int(k or 0)
    scaled = what == COUNTERFACTUALS[1]
    new, d = replay.replay(POOL.get(model), trace, cfg, k, **({"scale": float(scale)} if scaled else {"a": float(a)}))
    how = f"the latent scaled ×{float(scale):g}" if scaled else f"the gate forced to a = {float(a):g}"
    where = "no divergence" if d["first_diff"] is None else f"first different token at step {d['first_diff']}"
    answer = "answer unchanged" if d["same_answer"] else "**answer changed**"
    summary = (f"**Replay from step {k} with {how}**: {where}; {answer}: {d['orig_answer']!r} → "
               f"{d['new_answer']!r}; length {d['orig_len']} → {d['new_len']}")
    return summary, replay.divergence_html(trace, new, d["first_diff"]), d["orig_text"], d["new_text"]


# ------------------------------------------------------------------------------- map / compare

@user_error
def run_map(model, trace, color, path="fading"):
    if trace is None:
        raise ValueError("run a prompt on the Live tab first")
    if trace.latents is None:
        raise ValueError("this trace has no latents (hybrid decoding was off)")
    frame = maps.trace_map(POOL.get(model), trace)
    return maps.map_figure(frame, color, title="Latent map", path=path)


def compare_request(specs, limit: int, max_new: int) -> list[str]:
    """The distinct model specs, in order, within this host's COMPARE_LIMITS."""
    return report.compare_request(specs, limit, max_new, COMPARE_LIMITS)


@user_error
def run_compare(specs, task, limit, max_new, greedy, ablation=False):
    specs = compare_request(specs, int(limit), int(max_new))
    if ablation and COMPARE_LIMITS and 2 * len(specs) * int(limit) * int(max_new) > COMPARE_LIMITS["tokens"]:
        raise ValueError(f"hosted mode: the latent ablation decodes twice, so at most {COMPARE_LIMITS['tokens'] // 2} "
                         "tokens (models x problems x new tokens) with it")
    cfg = RolloutConfig(max_new_tokens=int(max_new), greedy=bool(greedy))
    tables, _ = report.run_compare(specs, task, int(limit), cfg, load=lambda s: POOL.get(s), ablation=bool(ablation),
                                   map_method="pca")           # the tab shows no maps: skip UMAP's JIT
    figs = report.report_figures(tables)
    tr = tables["traces"]
    side = tr.pivot_table(index="trace", columns="model", values="text", aggfunc="first", sort=False).reset_index()
    return (figs["Completion length"], figs["Accuracy"], figs["Script mix"], tables["summary"].round(4), side)


# --------------------------------------------------------------------------------- train tab

def curves_figure(metrics: list[dict], label: str = "this job", mode: str = ""):
    """The running job's curves: the training-dynamics figure of one run (a hint before any step)."""
    if not metrics:
        return plots.hint_figure("No training job yet: choose a model and task, then Start.")
    return dynamics.dynamics_figure({label: {"mode": mode, "rows": metrics}}, title="This job", height=480)


def train_status():
    st = JOBS.status()
    if st["state"] == "idle":
        return "No training job yet.", curves_figure([])
    eta = f", ETA {st['eta_s'] / 60:.1f} min" if st.get("eta_s") else ""
    line = (f"**{st['state']}**: {st['mode']} on {st['model']} / {st['task']}: step {st['step']}/{st['steps']}{eta} "
            f"· output `{st['out']}`")
    if st["state"] == "failed":
        line += "\n\n```\n" + st["log_tail"][-600:] + "\n```"
    return line, curves_figure(st["metrics"], Path(st["out"]).name, st.get("mode", ""))


def check_training_allowed() -> None:
    """All job control (start, stop, resume) is refused in hosted mode unless HRPO_ALLOW_TRAINING=1."""
    if not ALLOW_TRAINING:
        raise ValueError("training is switched off on this host")


@user_error
def start_training(model, task, mode, steps, group, batch, lr, max_new, name):
    check_training_allowed()
    name = "".join(c for c in (name or "").strip() if c.isalnum() or c in "-_") or f"{mode}-{int(time.time())}"
    cfg = TrainConfig(model=resolve_allowed(model, ROOT, HOSTED, DEFAULT_MODEL), task=task, mode=mode,
                      steps=int(steps), group_size=int(group), batch_prompts=int(batch), lr=float(lr),
                      max_new_tokens=int(max_new), out=str(JOBS.runs_dir / name))
    JOBS.start(cfg)                                   # refuses while a job runs (serialised by a lock)
    return train_status()


@user_error
def stop_training():
    check_training_allowed()
    if not JOBS.stop():
        raise ValueError("no training job is running")
    return train_status()


@user_error
def resume_training():
    check_training_allowed()
    JOBS.resume()
    return train_status()


# ------------------------------------------------------------------------------ dynamics tab

def dynamics_dirs() -> dict:
    """{label: dir} with a metrics.jsonl: shipped checkpoints, and (not hosted) every run under the runs dir."""
    return dynamics.discover(ROOT / "checkpoints", None if HOSTED else JOBS.runs_dir)


def show_dynamics(selected, smooth, last=None):
    """The training-dynamics figure of the selected runs; skipped (no redraw) when their files did not grow."""
    found = dynamics_dirs()
    chosen = {k: found[k] for k in (selected or []) if k in found}
    sig = dynamics.signature(chosen) + [int(smooth)]
    if last is not None and sig == last:
        return gr.skip(), gr.skip(), last
    if not chosen:
        fig = plots.hint_figure("No runs with metrics selected." if found else
                                "No training metrics yet: nothing under checkpoints/ or runs/ has a metrics.jsonl.")
    else:
        fig = dynamics.dynamics_figure(dynamics.load_runs(chosen), smooth=int(smooth))
    return fig, dynamics.selection_note(found, chosen, HOSTED), sig


def refresh_dynamics(selected):
    found = dynamics_dirs()
    keep = [k for k in (selected or []) if k in found]
    return gr.CheckboxGroup(choices=list(found), value=keep or dynamics.default_selection(found))


# -------------------------------------------------------------------------------------- layout

CSS = """
.tokens {font-family: ui-monospace, monospace; font-size: 15px; line-height: 1.9; white-space: pre-wrap;}
.tok {border-radius: 3px; padding: 1px 0;}
.legend {font-size: 12px; color: #777; margin-top: 6px;}
"""


def build() -> gr.Blocks:
    choices = model_choices()
    opening, found = live_default(choices), dynamics_dirs()
    with gr.Blocks(title="HRPO studio") as demo:
        trace_state = gr.State(None)
        gr.Markdown("# HRPO studio\nHybrid latent reasoning: while the model reasons (until it writes `####`), each "
                    "token's embedding is mixed with a probability-weighted latent through a learned gate.")
        with gr.Row():
            model = gr.Dropdown(choices, value=opening, label="Model", allow_custom_value=not HOSTED, scale=3,
                                elem_id="model")
            refresh = gr.Button("↻ models", scale=0, min_width=90)
            status = gr.Markdown(POOL.line(opening), elem_id="model-status")
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
            chart = gr.Plot(plots.live_step_figure([]), label="Gate, entropy, effective vocabulary", elem_id="gate-chart")
            table = gr.Dataframe(headers=STEP_HEADERS, label="Steps (select a row for details and as step k below)",
                                 interactive=False, wrap=True, max_height=320, elem_id="steps")
            details = gr.Markdown(elem_id="step-details")
            with gr.Row():
                json_file = gr.File(label="trace.json")
                csv_file = gr.File(label="trace.csv")
                dl = gr.Button("Export trace")
            gr.Markdown("**Gate counterfactual**: decode again (same seed and settings) and, from step k on, force "
                        "the gate to a (1 = tokens only, 0 = latent only) or scale the latent h.")
            with gr.Row():
                k = gr.Number(0, label="from step k", precision=0, elem_id="cf-k")
                cf_what = gr.Radio(COUNTERFACTUALS, value=COUNTERFACTUALS[0], label="counterfactual")
                cf_a = gr.Slider(0, 1, value=1, step=0.05, label="gate a (1 = tokens only, 0 = latent only)")
                cf_scale = gr.Slider(0, 3, value=0, step=0.1, label="latent scale (h ×)")
                replay_btn = gr.Button("Replay from step k", elem_id="replay")
            replay_md = gr.Markdown(elem_id="replay-summary")
            replay_diff = gr.HTML(elem_id="replay-diff")
            with gr.Accordion("Completions as text", open=False):
                with gr.Row():
                    orig_text = gr.Textbox(label="original", lines=6)
                    new_text = gr.Textbox(label="replay", lines=6)
        with gr.Tab("Latent map"):
            with gr.Row():
                color = gr.Radio(["step", "hidden_ratio"], value="step", label="colour by")
                path = gr.Radio(["fading", "off"], value="fading", label="path between steps")
            map_btn = gr.Button("Map the current trace", elem_id="map-btn")
            map_plot = gr.Plot(plots.hint_figure("Run a prompt on the Live tab, then map its latents here."),
                               elem_id="map-plot")
        with gr.Tab("Compare"):
            specs = gr.CheckboxGroup(choices, value=compare_default(choices), label="Models", elem_id="cmp-models")
            if COMPARE_LIMITS:
                gr.Markdown(f"Hosted: up to {COMPARE_LIMITS['models']} models, {COMPARE_LIMITS['problems']} problems "
                            f"and {COMPARE_LIMITS['new_tokens']} new tokens, {COMPARE_LIMITS['tokens']} tokens in all "
                            "(models × problems × new tokens) per comparison.")
            with gr.Row():
                task = gr.Dropdown(["arith", "gsm8k", *[f"mgsm:{x}" for x in "en zh ja ru de fr es bn te th sw".split()]],
                                   value="arith", label="Task", allow_custom_value=not HOSTED)
                limit = gr.Slider(1, 100, value=8, step=1, label="problems", elem_id="cmp-limit")
                cmp_new = gr.Slider(16, 512, value=96, step=16, label="max new tokens", elem_id="cmp-new")
                cmp_greedy = gr.Checkbox(True, label="greedy")
                cmp_ablate = gr.Checkbox(False, label="latent ablation (also decode with a = 1 from step 0)")
            cmp_btn = gr.Button("Compare", variant="primary", elem_id="cmp-btn")
            empty = "Pick models and a task, then Compare."
            with gr.Row():
                len_plot, acc_plot = gr.Plot(plots.hint_figure(empty), elem_id="cmp-len"), gr.Plot(plots.hint_figure(empty))
            script_plot = gr.Plot(plots.hint_figure(empty))
            summary = gr.Dataframe(label="Summary", elem_id="cmp-summary")
            texts = gr.Dataframe(label="Completions side by side", wrap=True, max_height=400)
        with gr.Tab("Training dynamics"):
            gr.Markdown("Hidden ratio (p10-p90 band), reward and accuracy, completion length and KL over training, "
                        "HRPO and GRPO overlaid, from each run's `metrics.jsonl` (like the paper's Fig. 4).")
            with gr.Row():
                dyn_runs = gr.CheckboxGroup(list(found), value=dynamics.default_selection(found), label="Runs",
                                            scale=4, elem_id="dyn-runs")
                dyn_smooth = gr.Slider(1, 25, value=1, step=1, label="moving average (steps)", scale=1)
                dyn_refresh = gr.Button("↻ runs", scale=0, min_width=90)
            dyn_fig, dyn_text, dyn_sig = show_dynamics(dynamics.default_selection(found), 1)
            dyn_note = gr.Markdown(dyn_text, elem_id="dyn-note")
            dyn_plot = gr.Plot(dyn_fig, elem_id="dyn-plot")
            dyn_last = gr.State(dyn_sig)
            dyn_timer = gr.Timer(3.0, active=not HOSTED)
        with gr.Tab("Train", visible=ALLOW_TRAINING):
            with gr.Row():
                t_model = gr.Dropdown(choices, value="default" if "default" in choices else choices[0],
                                      label="Base model")
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
            t_plot = gr.Plot(curves_figure([]))
            timer = gr.Timer(2.0)
        # events
        live_inputs = [model, prompt, max_new, temperature, top_k, seed, greedy, hybrid]
        run.click(run_live, live_inputs, [tokens, chart, table, trace_state, run_status], api_name="generate")
        table.select(step_details, [model, trace_state], [details, k])
        dl.click(download_trace, [trace_state], [json_file, csv_file], api_name="export")
        replay_btn.click(run_replay, [model, trace_state, k, cf_what, cf_a, cf_scale, max_new, temperature, top_k, seed,
                                      greedy, hybrid], [replay_md, replay_diff, orig_text, new_text], api_name="replay")
        map_btn.click(run_map, [model, trace_state, color, path], map_plot, api_name="latent_map")
        cmp_btn.click(run_compare, [specs, task, limit, cmp_new, cmp_greedy, cmp_ablate],
                      [len_plot, acc_plot, script_plot, summary, texts], api_name="compare")
        dyn_inputs = [dyn_runs, dyn_smooth]
        for trigger in (dyn_runs.change, dyn_smooth.release):
            trigger(show_dynamics, dyn_inputs, [dyn_plot, dyn_note, dyn_last], api_name=False)
        dyn_refresh.click(refresh_dynamics, dyn_runs, dyn_runs, api_name="dynamics_runs")
        dyn_timer.tick(show_dynamics, [*dyn_inputs, dyn_last], [dyn_plot, dyn_note, dyn_last], api_name=False)
        gr.Button(visible=False).click(show_dynamics, dyn_inputs, [dyn_plot, dyn_note, dyn_last], api_name="dynamics")
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


def server_address(host: str | None, port: int | None, env) -> tuple[str, int]:
    """--host / --port when given, else Gradio's own GRADIO_SERVER_NAME / GRADIO_SERVER_PORT, else HOST / PORT."""
    host = host or env.get("GRADIO_SERVER_NAME") or env.get("HOST") or ("0.0.0.0" if HOSTED else "127.0.0.1")
    return host, int(port or env.get("GRADIO_SERVER_PORT") or env.get("PORT") or 7860)


def main() -> None:
    parser = argparse.ArgumentParser(description="HRPO studio app")
    parser.add_argument("--port", type=int, default=None, help="default: $GRADIO_SERVER_PORT, $PORT, 7860")
    parser.add_argument("--host", default=None, help="default: $GRADIO_SERVER_NAME, $HOST, 127.0.0.1 (hosted 0.0.0.0)")
    args = parser.parse_args()
    host, port = server_address(args.host, args.port, os.environ)
    POOL.preload(live_default(model_choices()))
    demo = build()
    demo.queue(default_concurrency_limit=2 if HOSTED else 4, max_size=64 if HOSTED else None)
    demo.launch(server_name=host, server_port=port, css=CSS, theme=gr.themes.Soft(), show_error=False)


if __name__ == "__main__":
    main()

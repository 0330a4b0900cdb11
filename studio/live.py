"""The Live reasoning tab: streamed hybrid decoding, per-step gate chart and table, step details, trace export,
gate counterfactual replays.

Streaming: the decoder (hrpo.static_decoder.make_decoder: the CUDA-graph StaticDecoder on a GPU, the eager
Decoder elsewhere) yields per-step records; the page gets an update on a clock, at most every UPDATE_S
seconds (the tokens and the status line), and the chart at most every CHART_S seconds, so the page stays
smooth and the UI costs little of the decoder's speed (`python -m bench.bench_live` measures the ratio).
API: /generate (streams), /export, /replay.  Test: pytest tests/test_app.py tests/test_browser.py
"""
import dataclasses
import time
from dataclasses import dataclass

import gradio as gr

from analysis import export, plots, projections, replay
from hrpo.checkpoint import is_checkpoint, read_config
from hrpo.config import RolloutConfig
from hrpo.rewards import score
from hrpo.rollout import Trace
from hrpo.static_decoder import make_decoder

from .common import Studio, number, rollout_config, user_error
from .gpu import gpu_task, live_seconds

UPDATE_S = 0.25          # tokens and status at most this often (bench/bench_live.py measures the cost)
CHART_S = 3.0            # the chart at most this often (a plotly figure is the costly part of an update)
# (prompt, expected answer): the English ones are everyday questions in plain wording; the shipped HRPO model
# answers the first four greedily (tests/test_app.py), Janet's ducks (GSM8K) is beyond a 135M model and the
# status says so.  The others show the model on languages it was not trained on.
EXAMPLE_ANSWERS = {
    "Tom has 12 marbles. He buys 7 more. How many marbles does Tom have now?": "19",
    "Lily had 20 balloons. 6 flew away. How many balloons does she have now?": "14",
    "There are 5 boxes with 6 pens in each box. How many pens are there?": "30",
    "Sam has 4 cards. Kai has 3 times as many cards. How many cards does Kai have?": "12",
    "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her "
    "friends every day with four. She sells the remainder for $2 per egg. How much does she make every day?": "18",
    "小明有5个苹果，又买了3个。他现在有几个苹果？": "8",
    "Marie hat 4 Äpfel und kauft 6 dazu. Wie viele Äpfel hat sie jetzt?": "10",
    "У Маши 9 конфет, она съела 4. Сколько конфет осталось?": "5",
    "Juan tiene 8 lápices y regala 3. ¿Cuántos lápices le quedan?": "5",
}
EXAMPLES = list(EXAMPLE_ANSWERS)
STEP_HEADERS = ["step", "token", "thinking", "gate a", "hidden ratio", "entropy", "eff. vocab 1/Σp²",
                "latent nearest (cosine)"]
COUNTERFACTUALS = ["force gate a", "scale the latent"]


@dataclass
class LiveRun:
    """What the Live tab keeps of its last run (a gr.State): the model spec that decoded it, the trace and its
    decoding settings (a replay changes only what it names)."""
    model: str
    trace: Trace
    cfg: RolloutConfig


def step_rows(hm, trace) -> list[list]:
    """The steps table: each step's statistics and, at thinking steps (where the latent is mixed in), the five
    tokens nearest to its latent."""
    thinking = [s.index for s in trace.steps if s.thinking]
    proj = projections.trace_projections(hm, trace, k=5, sources=("latent",), steps=thinking)
    near = {r.step: r.latent for r in projections.projection_table(proj).itertuples()} if not proj.empty else {}
    return [[s.index, s.token, s.thinking, round(s.gate_a, 5), round(s.hidden_ratio, 5), round(s.entropy, 3),
             round(s.eff_vocab, 2), near.get(s.index, "")] for s in trace.steps]


def paced(events, every: float = UPDATE_S, clock=time.perf_counter):
    """Group a decoder's per-position events by time: yields (steps so far, True when this is the last group):
    the first token at once, then at most one group per `every` seconds while decoding, and always the final one.
    The decoder runs in the caller's thread between groups: decoding in a thread of its own, to overlap the page
    updates, is slower on a 2-core CPU (the page's work then competes with the decoder's threads)."""
    steps, last = [], None
    for batch in events:
        steps += [s for _, s in batch]
        now = clock()
        if last is None or now - last >= every:
            last = now
            yield steps, False
    yield steps, True


PLAIN_NOTE = "plain decoding (GRPO checkpoint: trained without latents)"
BASE_NOTE = "hybrid decoding with a fresh gate (a ≈ 1): the untrained HRPO starting point"
HRPO_NOTE = "hybrid decoding with the checkpoint's trained gate"


def decoding_mode(st: Studio, spec: str):
    """(note, hybrid checkbox update) for a model spec: a GRPO checkpoint decodes plain (hrpo.rollout.decoding_config)
    and its hybrid box is off and disabled; an HRPO checkpoint or a base model keep the box."""
    try:
        path = st.host.resolve(spec)
        mode = read_config(path)["mode"] if is_checkpoint(path) else "base"
    except (ValueError, OSError):
        mode = "base"
    if mode == "grpo":
        return f"*{PLAIN_NOTE}*", gr.Checkbox(value=False, interactive=False)
    return f"*{HRPO_NOTE if mode == 'hrpo' else BASE_NOTE}*", gr.Checkbox(value=True, interactive=True)


def verdict(prompt: str, completion: str) -> str:
    """For an example prompt: ' (right)' or ' (wrong: the answer is N)', by the task's math check; else ''."""
    expected = EXAMPLE_ANSWERS.get(prompt.strip())
    if expected is None:
        return ""
    correct, formatted = score("math", completion, expected)
    return " (right)" if correct and formatted else f" (**wrong**: the answer is {expected})"


def make_live(st: Studio):
    """The /generate callback: streams (tokens html, chart, table, run state, status)."""
    @user_error
    @gpu_task(lambda model, prompt, max_new, *rest: live_seconds(max_new))
    def generate(model, prompt, max_new, temperature, top_k, seed, greedy, hybrid):
        cfg = rollout_config(max_new, temperature, top_k, seed, greedy, hybrid)
        st.host.check_prompt(prompt, cfg.max_new_tokens)
        hm = st.pool.get(model)
        dec = make_decoder(hm, [prompt], cfg, keep_states=True)
        t0 = last_chart = time.perf_counter()
        for steps, done in paced(dec.steps()):
            if done:
                break
            now, chart = time.perf_counter(), gr.skip()
            if now - last_chart >= CHART_S:
                chart, last_chart = plots.live_step_figure(steps), now
            status = f"generating… {len(steps)} tokens, {len(steps) / (now - t0):.1f} tokens/s"
            yield plots.tokens_html(steps, hm.tokenizer.decode), chart, gr.skip(), gr.skip(), status
        trace = dec.traces[0]
        how = "hybrid" if dec.cfg.hybrid else PLAIN_NOTE if hm.plain_only else "plain decoding"
        status = (f"done: {len(trace.token_ids)} tokens ({sum(s.thinking for s in trace.steps)} thinking), "
                  f"answer `{trace.answer!r}`{verdict(prompt, trace.text)}, {dec.tokens_per_s:.1f} tokens/s, "
                  f"finish: {trace.finish}; {how}")
        yield (plots.tokens_html(trace.steps, hm.tokenizer.decode), plots.live_step_figure(trace.steps),
               step_rows(hm, trace), LiveRun(model, trace, dec.cfg), status)
    return generate


def make_step_details(st: Studio):
    @user_error
    @gpu_task(lambda run, evt: 20)
    def step_details(run, evt: gr.SelectData):
        """The selected step's details; it also becomes the counterfactual's step k."""
        if run is None:
            return "Run a prompt first.", gr.skip()
        k = int(evt.index[0]) if isinstance(evt.index, (list, tuple)) else int(evt.index)
        return projections.step_markdown(st.pool.get(run.model), run.trace, k), k
    return step_details


@user_error
def download_trace(run):
    if run is None:
        raise ValueError("run a prompt first")
    return export.write_trace_files(run.trace, export.export_dir())


def make_replay(st: Studio):
    @user_error
    @gpu_task(lambda model, run, k, what, a, scale, max_new, *rest: live_seconds(max_new))
    def run_replay(model, run, k, what, a, scale, max_new, temperature, top_k, seed, greedy, hybrid):
        """Re-decode with the gate forced to a (1 = tokens only, 0 = latent only) or the latent h scaled, from
        step k, with the model that decoded the trace."""
        if run is None:
            raise ValueError("run a prompt first")
        trace = run.trace
        if not trace.hybrid and st.pool.get(run.model).plain_only:
            raise ValueError("a GRPO checkpoint decodes without latents: it has no trained gate to force or scale")
        if not trace.hybrid:
            raise ValueError("gate counterfactuals need hybrid decoding (tick 'hybrid' and run again)")
        if what not in COUNTERFACTUALS:
            raise ValueError(f"choose one of: {', '.join(COUNTERFACTUALS)}")
        asked = rollout_config(max_new, temperature, top_k, seed, greedy, hybrid)
        k, a, scale = number(k or 0, "step k", True), number(a, "gate a"), number(scale, "latent scale")
        if k >= len(trace.steps):
            raise ValueError(f"step k = {k} is past the trace (its steps are 0-{len(trace.steps) - 1})")
        scaled = what == COUNTERFACTUALS[1]
        cfg = run.cfg                               # the trace's own settings: only the counterfactual changes
        new, d = replay.replay(st.pool.get(run.model), trace, cfg, k, **({"scale": scale} if scaled else {"a": a}))
        how = f"the latent scaled ×{scale:g}" if scaled else f"the gate forced to a = {a:g}"
        where = "no divergence" if d["first_diff"] is None else f"first different token at step {d['first_diff']}"
        answer = "answer unchanged" if d["same_answer"] else "**answer changed**"
        other = "" if model == run.model else f" (replayed with `{run.model}`, the model that decoded this trace)"
        changed = [f.name for f in dataclasses.fields(cfg) if f.name != "hybrid" and getattr(asked, f.name) !=
                   getattr(cfg, f.name)]
        settings = "" if not changed else (f" (with the trace's decoding settings; the sampling controls now differ "
                                           f"in {', '.join(changed)} and apply to the next run)")
        summary = (f"**Replay from step {k} with {how}**{other}{settings}: {where}; {answer}: {d['orig_answer']!r} → "
                   f"{d['new_answer']!r}; length {d['orig_len']} → {d['new_len']}")
        return summary, replay.divergence_html(trace, new, d["first_diff"]), d["orig_text"], d["new_text"]
    return run_replay


def build(st: Studio, model, run_state) -> None:
    """The Live reasoning tab's components and events (inside a gr.Tab)."""
    limit = st.host.max_new_tokens
    prompt = gr.Textbox(label="Prompt", lines=3, value=EXAMPLES[0], elem_id="prompt")
    gr.Examples(EXAMPLES, inputs=[prompt])
    with gr.Accordion("Sampling", open=False):
        with gr.Row():
            max_new = gr.Slider(8, limit, value=128, step=8, label="max new tokens")
            temperature = gr.Slider(0.05, 1.5, value=0.5, step=0.05, label="temperature τ")
            top_k = gr.Slider(0, 200, value=50, step=1, label="top-k (0 = all)")
            seed = gr.Number(0, label="seed")
        note, box = decoding_mode(st, model.value)
        with gr.Row():
            greedy = gr.Checkbox(True, label="greedy")
            hybrid = gr.Checkbox(box.value, interactive=box.interactive, label="hybrid (latent mixing)",
                                 elem_id="hybrid")
    decoding = gr.Markdown(note, elem_id="decoding-mode")
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
        export_btn = gr.Button("Export trace")
    gr.Markdown("**Gate counterfactual**: decode again (same seed and settings) and, from step k on, force "
                "the gate to a (1 = tokens only, 0 = latent only) or scale the latent h.")
    with gr.Row():
        k = gr.Number(0, label="from step k", elem_id="cf-k")
        what = gr.Radio(COUNTERFACTUALS, value=COUNTERFACTUALS[0], label="counterfactual")
        cf_a = gr.Slider(0, 1, value=1, step=0.05, label="gate a (1 = tokens only, 0 = latent only)")
        cf_scale = gr.Slider(0, 3, value=0, step=0.1, label="latent scale (h ×)")
        replay_btn = gr.Button("Replay from step k", elem_id="replay")
    replay_md = gr.Markdown(elem_id="replay-summary")
    replay_diff = gr.HTML(elem_id="replay-diff")
    with gr.Accordion("Completions as text", open=False):
        with gr.Row():
            orig_text = gr.Textbox(label="original", lines=6)
            new_text = gr.Textbox(label="replay", lines=6)

    sampling = [max_new, temperature, top_k, seed, greedy, hybrid]
    model.change(lambda spec: decoding_mode(st, spec), model, [decoding, hybrid], api_visibility="private")
    run.click(make_live(st), [model, prompt, *sampling], [tokens, chart, table, run_state, run_status],
              api_name="generate")
    table.select(make_step_details(st), [run_state], [details, k], api_visibility="private")
    export_btn.click(download_trace, [run_state], [json_file, csv_file], api_name="export")
    replay_btn.click(make_replay(st), [model, run_state, k, what, cf_a, cf_scale, *sampling],
                     [replay_md, replay_diff, orig_text, new_text], api_name="replay")

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

import gradio as gr

from analysis import export, plots, projections, replay
from hrpo import trace_file
from hrpo.checkpoint import is_checkpoint, read_config
from hrpo.models import check_spec
from hrpo.rewards import score
from hrpo.static_decoder import make_decoder
from hrpo.trace_file import TraceFile

from .common import Studio, checked_slider, number, rollout_config, user_error
from .gpu import gpu_task, live_seconds

UPDATE_S = 0.25          # tokens and status at most this often (bench/bench_live.py measures the cost)
CHART_S = 3.0            # the chart at most this often (a plotly figure is the costly part of an update)
# (prompt, expected answer): everyday questions in plain wording; the shipped HRPO model answers the first four
# greedily (tests/test_app.py), Janet's ducks (GSM8K) is beyond a 135M model and the status says so.
ENGLISH_EXAMPLES = {
    "Tom has 12 marbles. He buys 7 more. How many marbles does Tom have now?": "19",
    "Lily had 20 balloons. 6 flew away. How many balloons does she have now?": "14",
    "There are 5 boxes with 6 pens in each box. How many pens are there?": "30",
    "Sam has 4 cards. Kai has 3 times as many cards. How many cards does Kai have?": "12",
    "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her "
    "friends every day with four. She sells the remainder for $2 per egg. How much does she make every day?": "18",
}
# Other languages: picking one opens the multilingual model (Host.multilingual_default), when there is one.
MULTILINGUAL_EXAMPLES = {
    "小明有5个苹果，又买了3个。他现在有几个苹果？": "8",
    "แดงมีดินสอ 7 แท่ง ซื้อมาอีก 5 แท่ง ตอนนี้แดงมีดินสอกี่แท่ง": "12",
    "りんごが15個あります。4個食べました。りんごは何個残っていますか。": "11",
    "Marie hat 4 Äpfel und kauft 6 dazu. Wie viele Äpfel hat sie jetzt?": "10",
    "У Маши 9 конфет, она съела 4. Сколько конфет осталось?": "5",
    "Juan tiene 8 lápices y regala 3. ¿Cuántos lápices le quedan?": "5",
}
EXAMPLE_ANSWERS = {**ENGLISH_EXAMPLES, **MULTILINGUAL_EXAMPLES}
EXAMPLES = list(EXAMPLE_ANSWERS)
STEP_HEADERS = ["step", "token", "thinking", "gate a", "hidden ratio", "entropy", "eff. vocab 1/Σp²",
                "latent nearest (cosine)"]
COUNTERFACTUALS = ["force gate a", "scale the latent"]


def nearest_cell(pairs) -> str:
    """A step's latent nearest tokens as the steps table shows them: 'tok' (0.123), ..."""
    return ", ".join(f"{tok!r} ({cos:.3f})" for tok, cos in pairs)


def step_rows(run: TraceFile) -> list[list]:
    """The steps table: each step's statistics and, at thinking steps (where the latent is mixed in), the five
    tokens nearest to its latent (kept in the trace file, so an opened trace shows them without its model)."""
    return [[s.index, s.token, s.thinking, round(s.gate_a, 5), round(s.hidden_ratio, 5), round(s.entropy, 3),
             round(s.eff_vocab, 2), nearest_cell(near)] for s, near in zip(run.trace.steps, run.nearest)]


def status_line(run: TraceFile) -> str:
    """The status under Run for a finished (or opened) trace."""
    tr = run.trace
    how = "hybrid" if tr.hybrid else PLAIN_NOTE if run.model_mode == "grpo" else "plain decoding"
    return (f"done: {len(tr.token_ids)} tokens ({sum(s.thinking for s in tr.steps)} thinking), answer "
            f"`{tr.answer!r}`{verdict(run.question, tr.text)}, {run.tokens_per_s:.1f} tokens/s, finish: {tr.finish}; "
            f"{how}")


def shown(run: TraceFile, status: str) -> tuple:
    """The Live outputs of a trace: (tokens html, chart, steps table, run state, status)."""
    steps = run.trace.steps
    return plots.tokens_html(steps, shown=run.shown), plots.live_step_figure(steps), step_rows(run), run, status


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


def example_model(st: Studio, prompt: str, current: str):
    """The model a picked example opens on: an example in another language opens the multilingual model
    (Host.multilingual_default) and an English one goes back to Live's default from there; any other prompt, or
    a host without a multilingual model, keeps the current model (gr.skip())."""
    choices = st.host.model_choices()
    multi, text = st.host.multilingual_default(choices), (prompt or "").strip()
    if multi is not None and text in MULTILINGUAL_EXAMPLES and current != multi:
        return multi
    if multi is not None and text in ENGLISH_EXAMPLES and current == multi:
        return st.host.live_default(choices)
    return gr.skip()


def verdict(prompt: str, completion: str) -> str:
    """For an example prompt: ' (right)' or ' (wrong: the answer is N)', by the task's math check; else ''."""
    expected = EXAMPLE_ANSWERS.get(prompt.strip())
    if expected is None:
        return ""
    correct, formatted = score("math", completion, expected)
    return " (right)" if correct and formatted else f" (**wrong**: the answer is {expected})"


def make_live(st: Studio):
    """The /generate callback: streams (tokens html, chart, table, run state, status).  The request is checked
    (numbers, prompt, host limits) before the GPU is asked for (studio/gpu.py)."""
    @gpu_task(lambda model, prompt, cfg: live_seconds(cfg.max_new_tokens))
    def live_decode(model, prompt, cfg):     # plain values in and out: ZeroGPU pickles them across processes
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
        run = trace_file.of_decode(hm, model, dec, prompt)
        yield shown(run, status_line(run))

    @user_error
    def generate(model, prompt, max_new, temperature, top_k, seed, greedy, hybrid):
        cfg = rollout_config(max_new, temperature, top_k, seed, greedy, hybrid)
        st.host.check_prompt(prompt, cfg.max_new_tokens)
        st.host.check_prompt_tokens(st.pool.get(model).tokenizer, prompt)
        yield from live_decode(model, prompt, cfg)
    return generate


def make_step_details(st: Studio):
    @gpu_task(lambda model, trace, k: 20)
    def step_detail(model, trace, k):
        return projections.step_markdown(st.pool.get(model), trace, k)

    @user_error
    def step_details(run, evt: gr.SelectData):
        """The selected step's details; it also becomes the counterfactual's step k."""
        if run is None:
            return "Run a prompt first.", gr.skip()
        k = int(evt.index[0]) if isinstance(evt.index, (list, tuple)) else int(evt.index)
        return step_detail(run.model, run.trace, k), k
    return step_details


@user_error
def download_trace(run):
    if run is None:
        raise ValueError("run a prompt first")
    return export.write_trace_files(run, export.export_dir())


def make_replay(st: Studio):
    @gpu_task(lambda model, trace, cfg, k, change: live_seconds(cfg.max_new_tokens))
    def replay_decode(model, trace, cfg, k, change):
        return replay.replay(st.pool.get(model), trace, cfg, k, **change)

    @user_error
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
        cfg = run.decoding                          # the trace's own settings: only the counterfactual changes
        new, d = replay_decode(run.model, trace, cfg, k, {"scale": scale} if scaled else {"a": a})
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


def model_note(st: Studio, run: TraceFile) -> str:
    """'' when the model of an opened trace can be loaded here, else one line on what needs it and why not."""
    try:
        check_spec(st.host.resolve(run.model))
        return ""
    except ValueError as err:
        return (f" · step details, the latent map and replays need its model `{run.model[:200]}`, which is not "
                f"available here ({str(err).splitlines()[0][:200]})")


def make_open(st: Studio):
    @user_error
    def load_trace(file):
        """/load_trace: a trace file (Export, Share, `generate --save`) shown as /generate's last update shows it:
        tokens, chart, steps table, run state and status."""
        path = file if isinstance(file, (str, type(None))) else getattr(file, "name", None) or file.get("path")
        if not path:
            raise ValueError("choose a trace file (.json) to open")
        run = trace_file.read(path)
        return shown(run, status_line(run) + model_note(st, run))
    return load_trace


def make_share(st: Studio):
    @user_error
    def share_trace(run):
        """/share_trace: keep the current trace in the trace store; returns (key, the link's query '?trace=key')."""
        if run is None:
            raise ValueError("run a prompt (or open a trace) first")
        key = st.traces.put(trace_file.dump(run))
        return key, f"?trace={key}"
    return share_trace


def make_opening(st: Studio):
    @user_error
    def open_page(request: gr.Request):
        """On page load: the shared trace of `?trace=<key>`, else the trace the app was started with, else
        nothing."""
        key = request.query_params.get("trace") if request is not None else None
        run = st.traces.get(key) if key else st.opening
        if run is None:
            return (gr.skip(),) * 5
        return shown(run, status_line(run) + model_note(st, run))
    return open_page


SHARE_JS = "(key, link) => key ? window.location.origin + window.location.pathname + '?trace=' + key : ''"


def build(st: Studio, model, run_state) -> list:
    """The Live reasoning tab's components and events (inside a gr.Tab); returns the outputs a trace is shown in
    (app.py opens `?trace=` links into them on page load)."""
    limit = st.host.max_new_tokens
    prompt = gr.Textbox(label="Prompt", lines=3, value=EXAMPLES[0], elem_id="prompt")
    examples = gr.Examples(EXAMPLES, inputs=[prompt], examples_per_page=len(EXAMPLES), elem_id="live-examples")
    with gr.Accordion("Sampling", open=False):
        with gr.Row():
            max_new = checked_slider(8, limit, value=128, step=8, label="max new tokens")
            temperature = checked_slider(0.05, 1.5, value=0.5, step=0.05, label="temperature τ")
            top_k = checked_slider(0, 200, value=50, step=1, label="top-k (0 = all)")
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
        with gr.Column():
            export_btn = gr.Button("Export trace", elem_id="export")
            open_btn = gr.UploadButton("Open a trace", file_types=[".json"], elem_id="open-trace")
            share_btn = gr.Button("Share", elem_id="share")
    with gr.Row():
        share_key = gr.Textbox(visible=False)
        share_link = gr.Textbox(label="Share link (opens this trace in any browser)", elem_id="share-link",
                                buttons=["copy"], interactive=False)
    gr.Markdown("**Gate counterfactual**: decode again (same seed and settings) and, from step k on, force "
                "the gate to a (1 = tokens only, 0 = latent only) or scale the latent h.")
    with gr.Row():
        k = gr.Number(0, label="from step k", elem_id="cf-k")
        what = gr.Radio(COUNTERFACTUALS, value=COUNTERFACTUALS[0], label="counterfactual")
        cf_a = checked_slider(0, 1, value=1, step=0.05, label="gate a (1 = tokens only, 0 = latent only)")
        cf_scale = checked_slider(0, 3, value=0, step=0.1, label="latent scale (h ×)")
        replay_btn = gr.Button("Replay from step k", elem_id="replay")
    replay_md = gr.Markdown(elem_id="replay-summary")
    replay_diff = gr.HTML(elem_id="replay-diff")
    with gr.Accordion("Completions as text", open=False):
        with gr.Row():
            orig_text = gr.Textbox(label="original", lines=6)
            new_text = gr.Textbox(label="replay", lines=6)

    sampling = [max_new, temperature, top_k, seed, greedy, hybrid]
    model.change(lambda spec: decoding_mode(st, spec), model, [decoding, hybrid], api_visibility="private")

    def on_example(spec: str, evt: gr.SelectData):       # a picked example, never a keystroke
        i = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        return example_model(st, EXAMPLES[i], spec)
    examples.dataset.select(on_example, [model], model, api_visibility="private")
    run.click(make_live(st), [model, prompt, *sampling], [tokens, chart, table, run_state, run_status],
              api_name="generate")
    table.select(make_step_details(st), [run_state], [details, k], api_visibility="private")
    export_btn.click(download_trace, [run_state], [json_file, csv_file], api_name="export")
    outputs = [tokens, chart, table, run_state, run_status]
    open_btn.upload(make_open(st), open_btn, outputs, api_name="load_trace")
    share_btn.click(make_share(st), [run_state], [share_key, share_link], api_name="share_trace").then(
        None, [share_key, share_link], share_link, js=SHARE_JS)
    replay_btn.click(make_replay(st), [model, run_state, k, what, cf_a, cf_scale, *sampling],
                     [replay_md, replay_diff, orig_text, new_text], api_name="replay")
    return outputs

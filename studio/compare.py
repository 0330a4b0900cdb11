"""The Compare tab: the same problems through base, GRPO and HRPO models, side by side.

Lengths, accuracy, script mix of sampled and latent tokens, a summary table, completions side by side, and
the latent ablation (accuracy with the trained gate vs a forced to 1).  The request is checked against the
host's limits and allow-list before any model is loaded.  API: /compare.  Test: pytest tests/test_app.py -k compare
"""
import gradio as gr

from analysis import plots, report
from hrpo.config import RolloutConfig

from .common import Studio, checked_choices, checked_slider, number, user_error
from .gpu import compare_seconds, gpu_task

TASKS = ["arith", "gsm8k", *[f"mgsm:{x}" for x in "en zh ja ru de fr es bn te th sw".split()], "multi:heldout"]


def make_compare(st: Studio):
    def seconds(specs, task, limit, max_new, greedy, ablation=False):
        return compare_seconds(len(set(specs or [])), limit, max_new, ablation)

    @gpu_task(seconds)
    def compare_decode(specs, task, limit, max_new, greedy, ablation=False):
        cfg = RolloutConfig(max_new_tokens=max_new, greedy=bool(greedy))
        tables, _ = report.run_compare(specs, task, limit, cfg, load=st.pool.get, ablation=bool(ablation),
                                       map_method="pca")           # the tab shows no maps: skip UMAP's JIT
        figs = report.report_figures(tables)
        tr = tables["traces"]
        side = tr.pivot_table(index="trace", columns="model", values="text", aggfunc="first", sort=False).reset_index()
        return figs["Completion length"], figs["Accuracy"], figs["Script mix"], tables["summary"].round(4), side

    @user_error
    def run_compare(specs, task, limit, max_new, greedy, ablation=False):
        limit, max_new = number(limit, "problems", True), number(max_new, "max new tokens", True)
        specs = st.host.compare_request(specs, limit, max_new, bool(ablation))   # before the GPU is asked for
        return compare_decode(specs, task, limit, max_new, greedy, ablation)
    return run_compare


def build(st: Studio, choices: list[str]) -> gr.CheckboxGroup:
    """The Compare tab's components and events (inside a gr.Tab); returns its model picker."""
    specs = checked_choices(choices, value=st.host.compare_default(choices), label="Models", elem_id="cmp-models")
    if st.host.compare_note():
        gr.Markdown(st.host.compare_note())
    with gr.Row():
        task = gr.Dropdown(TASKS, value="arith", label="Task", allow_custom_value=not st.host.hosted)
        limit = checked_slider(1, 100, value=8, step=1, label="problems", elem_id="cmp-limit")
        max_new = checked_slider(16, 512, value=96, step=16, label="max new tokens", elem_id="cmp-new")
        greedy = gr.Checkbox(True, label="greedy")
        ablate = gr.Checkbox(False, label="latent ablation (also decode with a = 1 from step 0)")
    button = gr.Button("Compare", variant="primary", elem_id="cmp-btn")
    empty = "Pick models and a task, then Compare."
    with gr.Row():
        len_plot, acc_plot = gr.Plot(plots.hint_figure(empty), elem_id="cmp-len"), gr.Plot(plots.hint_figure(empty))
    script_plot = gr.Plot(plots.hint_figure(empty))
    summary = gr.Dataframe(label="Summary", elem_id="cmp-summary")
    texts = gr.Dataframe(label="Completions side by side", wrap=True, max_height=400)
    button.click(make_compare(st), [specs, task, limit, max_new, greedy, ablate],
                 [len_plot, acc_plot, script_plot, summary, texts], api_name="compare")
    return specs

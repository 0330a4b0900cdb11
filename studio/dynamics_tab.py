"""The Training dynamics tab (the paper's Fig. 4): hidden ratio with its p10-p90 band, reward and accuracy,
completion length and KL over training, HRPO and GRPO overlaid, from each run's metrics.jsonl; below it the
gate's selectivity (hidden ratio by token type, p90/p10) of the HRPO runs that log it.

Locally a timer redraws when a selected run's file grew (a running job's curves update live); hosted, only the
shipped checkpoints are listed.  API: /dynamics, /dynamics_runs.  Test: pytest tests/test_app.py -k dynamics
"""
import gradio as gr

from analysis import dynamics, plots

from .common import Studio, checked_choices, checked_slider, number, user_error


def selection(st: Studio, selected, smooth) -> tuple[dict, dict, int, list]:
    """(every run with metrics, the selected ones, the moving-average window, their signature): a figure is
    redrawn only when the signature changed (a selected run's metrics.jsonl grew, or the selection did)."""
    found = st.host.dynamics_dirs()
    chosen = {k: found[k] for k in (selected or []) if k in found}
    window = max(1, min(100, number(smooth, "moving average", True)))
    return found, chosen, window, dynamics.signature(chosen) + [window]


def make_show(st: Studio):
    def show_dynamics(selected, smooth, last=None):
        """The figure of the selected runs; skipped (no redraw) when their files did not grow."""
        found, chosen, window, sig = selection(st, selected, smooth)
        if last is not None and sig == last:
            return gr.skip(), gr.skip(), last
        if not chosen:
            fig = plots.hint_figure("No runs with metrics selected." if found else
                                    "No training metrics yet: nothing under checkpoints/ or runs/ has a metrics.jsonl.")
        else:
            fig = dynamics.dynamics_figure(dynamics.load_runs(chosen), smooth=window)
        return fig, st.host.dynamics_note(found, chosen), sig
    return show_dynamics


def make_show_selectivity(st: Studio):
    def show_selectivity(selected, smooth, last=None):
        """Gate selectivity of the selected HRPO runs (token-type means, p90/p10); skipped when nothing grew."""
        _, chosen, window, sig = selection(st, selected, smooth)
        if last is not None and sig == last:
            return gr.skip(), last
        return dynamics.selectivity_figure(dynamics.load_runs(chosen), smooth=window), sig
    return show_selectivity


def build(st: Studio) -> None:
    """The Training dynamics tab's components and events (inside a gr.Tab)."""
    found = st.host.dynamics_dirs()
    show, show_sel = make_show(st), make_show_selectivity(st)
    gr.Markdown("Hidden ratio (p10-p90 band), reward and accuracy, completion length and KL over training, "
                "HRPO and GRPO overlaid, from each run's `metrics.jsonl` (like the paper's Fig. 4).")
    with gr.Row():
        runs = checked_choices(list(found), value=dynamics.default_selection(found), label="Runs", scale=4,
                                elem_id="dyn-runs")
        smooth = checked_slider(1, 25, value=1, step=1, label="moving average (steps)", scale=1)
        refresh = gr.Button("↻ runs", scale=0, min_width=90)
    fig, text, sig = show(dynamics.default_selection(found), 1)
    note = gr.Markdown(text, elem_id="dyn-note")
    plot = gr.Plot(fig, elem_id="dyn-plot")
    last = gr.State(sig)
    sel_fig, sel_sig = show_sel(dynamics.default_selection(found), 1)
    gr.Markdown("Does the gate pick where to think? The hidden ratio by kind of token (digits, operators, words, "
                "punctuation; first vs later tokens of a line) and the spread p90/p10 of the per-token hidden ratio "
                "(1 = the same for every token).")
    sel_plot = gr.Plot(sel_fig, elem_id="dyn-selectivity")
    sel_last = gr.State(sel_sig)
    timer = gr.Timer(3.0, active=not st.host.hosted)

    def refresh_runs(selected):
        now = st.host.dynamics_dirs()
        keep = [k for k in (selected or []) if k in now]
        return gr.CheckboxGroup(choices=list(now), value=keep or dynamics.default_selection(now))

    show, show_sel = user_error(show), user_error(show_sel)         # events: one-line errors
    runs.change(show, [runs, smooth], [plot, note, last], api_name="dynamics")
    smooth.release(show, [runs, smooth], [plot, note, last], api_visibility="private")
    refresh.click(user_error(refresh_runs), runs, runs, api_name="dynamics_runs")
    timer.tick(show, [runs, smooth, last], [plot, note, last], api_visibility="private")
    for trigger in (runs.change, smooth.release, timer.tick):     # the selectivity figure follows the same runs
        trigger(show_sel, [runs, smooth, sel_last], [sel_plot, sel_last], api_visibility="private")

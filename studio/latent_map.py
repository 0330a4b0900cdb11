"""The Latent map tab: UMAP of the Live trace's latent states among the token embeddings they are near.

API: /latent_map.  Test: pytest tests/test_app.py -k streamed tests/test_browser.py
"""
import gradio as gr

from analysis import maps, plots

from .common import Studio, user_error
from .gpu import gpu_task

MAP_SECONDS = 30          # nearest tokens of every latent on the GPU, then UMAP on the CPU


def make_map(st: Studio):
    @gpu_task(lambda model, trace: MAP_SECONDS)
    def map_nearest(model, trace):
        return maps.trace_map(st.pool.get(model), trace)

    @user_error
    def latent_map(model, run, color, path="fading"):
        """The map of the last Live trace, drawn with the model that decoded it (checked before the GPU is
        asked for)."""
        if run is None:
            raise ValueError("run a prompt on the Live tab first")
        if run.trace.latents is None:
            raise ValueError("this trace has no latents (hybrid decoding was off)")
        return maps.map_figure(map_nearest(run.model, run.trace), color, title="Latent map", path=path)
    return latent_map


def build(st: Studio, model, run_state) -> None:
    """The Latent map tab's components and events (inside a gr.Tab)."""
    with gr.Row():
        color = gr.Radio(["step", "hidden_ratio"], value="step", label="colour by")
        path = gr.Radio(["fading", "off"], value="fading", label="path between steps")
    button = gr.Button("Map the current trace", elem_id="map-btn")
    plot = gr.Plot(plots.hint_figure("Run a prompt on the Live tab, then map its latents here."), elem_id="map-plot")
    button.click(make_map(st), [model, run_state, color, path], plot, api_name="latent_map")

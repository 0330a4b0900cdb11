"""HRPO studio: the Gradio app.  This file assembles the tabs of studio/; each tab builds its components and
wires its own events, and studio/hosting.py decides what a visitor may load and run.

Tabs: Live reasoning, Latent map, Compare, Training dynamics, Train.  Live opens on the shipped HRPO checkpoint
(HRPO_MODEL, when set, decides).  Hosted mode (HRPO_HOSTED=1, or on a Space): limits, only checkpoints under
checkpoints/, training only with HRPO_ALLOW_TRAINING=1; on ZeroGPU (SPACES_ZERO_GPU) model work runs under
`spaces.GPU` (studio/gpu.py) and training is off.
Run: python app.py [--port 7860] [--host 127.0.0.1] [--trace FILE]; without them GRADIO_SERVER_PORT /
GRADIO_SERVER_NAME, then PORT / HOST apply; --trace (or HRPO_TRACE) opens the page on a saved trace file.
Test: pytest tests/test_app.py tests/test_browser.py tests/test_zerogpu.py
"""
import argparse
import os
import signal
import sys
from pathlib import Path

import gradio as gr

from analysis import export
from hrpo import trace_file
from studio import compare, dynamics_tab, latent_map, live, train_tab
from studio.common import Studio
from studio.memory import bound_memory, freeze_long_lived

ROOT = Path(__file__).resolve().parent
CSS = """
.tokens {font-family: ui-monospace, monospace; font-size: 15px; line-height: 1.9; white-space: pre-wrap;}
.tok {border-radius: 3px; padding: 1px 0;}
.legend {font-size: 12px; color: #777; margin-top: 6px;}
"""


def build(st: Studio) -> gr.Blocks:
    choices = st.host.model_choices()
    opening = st.host.live_default(choices)
    with gr.Blocks(title="HRPO studio", delete_cache=(60, 600)) as demo:   # cached exports: 10 minutes
        run_state = gr.State(None)                     # studio.live.LiveRun of the last Live run
        gr.Markdown("# HRPO studio\nHybrid latent reasoning: while the model reasons (until it writes `####`), each "
                    "token's embedding is mixed with a probability-weighted latent through a learned gate.")
        with gr.Row():
            model = gr.Dropdown(choices, value=opening, label="Model", allow_custom_value=not st.host.hosted,
                                scale=3, elem_id="model")
            refresh = gr.Button("↻ models", scale=0, min_width=90)
            status = gr.Markdown(st.pool.line(opening), elem_id="model-status")
        with gr.Tab("Live reasoning"):
            trace_outputs = live.build(st, model, run_state)
        with gr.Tab("Latent map"):
            latent_map.build(st, model, run_state)
        with gr.Tab("Compare"):
            cmp_models = compare.build(st, choices)
        with gr.Tab("Training dynamics"):
            dynamics_tab.build(st)
        with gr.Tab("Train"):
            train_model = train_tab.build(st, choices)

        def refresh_models():
            now = st.host.model_choices()
            return gr.Dropdown(choices=now), gr.Dropdown(choices=now), gr.CheckboxGroup(choices=now)
        refresh.click(refresh_models, None, [model, train_model, cmp_models], api_name="refresh_models")
        model.change(st.pool.line, model, status, api_visibility="private")
        gr.Timer(1.0).tick(st.pool.line, model, status, api_visibility="private")
        demo.load(live.make_opening(st), None, trace_outputs, api_visibility="private")   # ?trace=<key>, --trace
    return demo


QUEUE_POLL_S = 0.01          # how often gradio's queue looks for a new job while idle (its default: 1 ms)


def quiet_queue(demo: gr.Blocks) -> None:
    """Gradio's queue loop polls for new jobs every 1 ms, all the time; each wake-up takes the GIL from the
    decoding thread, which slows decoding measurably (`python -m bench.bench_live`).  A new job now waits at
    most QUEUE_POLL_S longer to start.  `sleep_when_free` is gradio's own attribute (queueing.Queue);
    tests/test_app.py checks that it is still there."""
    queue = demo._queue
    if not hasattr(queue, "sleep_when_free"):
        raise RuntimeError("gradio's Queue has no sleep_when_free any more: update quiet_queue in app.py")
    queue.sleep_when_free = max(queue.sleep_when_free, QUEUE_POLL_S)


def exit_on_ctrl_c() -> None:
    """Ctrl-C ends the app at once, exit status 130, its temporary files removed.  Python's KeyboardInterrupt
    would unwind the main thread while a request's thread is still inside torch, and the interpreter's
    shutdown would then abort (SIGABRT, "terminate called without an active exception").  Training jobs run in
    their own sessions and go on.  Test: pytest tests/test_reliability_files.py -k ctrl_c"""
    def stop(signum, frame):
        export.remove_trace_dir()
        print("\nHRPO studio stopped (Ctrl-C)", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(130)
    signal.signal(signal.SIGINT, stop)


def server_address(host: str | None, port: int | None, env, hosted: bool) -> tuple[str, int]:
    """--host / --port when given, else Gradio's own GRADIO_SERVER_NAME / GRADIO_SERVER_PORT, else HOST / PORT."""
    host = host or env.get("GRADIO_SERVER_NAME") or env.get("HOST") or ("0.0.0.0" if hosted else "127.0.0.1")
    return host, int(port or env.get("GRADIO_SERVER_PORT") or env.get("PORT") or 7860)


def main() -> None:
    parser = argparse.ArgumentParser(description="HRPO studio app")
    parser.add_argument("--port", type=int, default=None, help="default: $GRADIO_SERVER_PORT, $PORT, 7860")
    parser.add_argument("--host", default=None, help="default: $GRADIO_SERVER_NAME, $HOST, 127.0.0.1 (hosted 0.0.0.0)")
    parser.add_argument("--trace", default=os.environ.get("HRPO_TRACE"),
                        help="open the page on this trace file (Live's Export, `python -m hrpo generate --save`); "
                             "default: $HRPO_TRACE")
    args = parser.parse_args()
    opening = None
    if args.trace:
        try:
            opening = trace_file.read(args.trace)
        except ValueError as err:
            parser.exit(2, f"error: --trace {args.trace}: {err}\n")
    bound_memory()                 # glibc: 2 malloc arenas, free memory trimmed when quiet (RSS would ratchet up)
    export.install_cleanup()       # trace exports removed at exit and on SIGTERM
    exit_on_ctrl_c()               # ... and on Ctrl-C, without an abort while a request decodes
    export.private_gradio_cache()  # gradio's copies of the exports go with them
    st = Studio.create(ROOT, os.environ)
    st.opening = opening
    host, port = server_address(args.host, args.port, os.environ, st.host.hosted)
    choices = st.host.model_choices()
    if st.host.zero_gpu:        # ZeroGPU moves models to CUDA at start-up, before any spaces.GPU call
        for spec in st.host.start_up_models(choices):
            st.pool.get(spec)
    else:
        st.pool.preload(st.host.start_up_models(choices), then=freeze_long_lived)
    demo = build(st)
    freeze_long_lived()            # full GC passes skip the start-up heap (studio/memory.py)
    demo.queue(**st.host.queue)
    quiet_queue(demo)
    demo.launch(server_name=host, server_port=port, css=CSS, theme=gr.themes.Soft(), show_error=False,
                max_file_size=trace_file.MAX_BYTES)        # uploads (Open a trace) are trace files


if __name__ == "__main__":
    main()

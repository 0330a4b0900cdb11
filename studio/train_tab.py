"""The Train tab: one background training job (it keeps running when the page closes), its live curves from
metrics.jsonl, progress with ETA, stop and resume.  A job is the shipped recipe of its mode
(configs/smollm2-arith-<mode>.json, as in checkpoints/README.md) with the fields shown here changed; where the
host does not allow training (hosted without HRPO_ALLOW_TRAINING=1, or ZeroGPU) the tab says why and has no controls.
API: /train_start, /train_stop, /train_resume, /train_status.  Test: pytest tests/test_app.py -k training
"""
import time
from pathlib import Path

import gradio as gr

from analysis import dynamics, plots
from hrpo.config import recipe

from .common import Studio, number, user_error

RECIPE = {"hrpo": "smollm2-arith-hrpo", "grpo": "smollm2-arith-grpo"}


def curves_figure(metrics: list[dict], label: str = "this job", mode: str = ""):
    """The running job's curves: the training-dynamics figure of one run (a hint before any step)."""
    if not metrics:
        return plots.hint_figure("No training job yet: choose a model and task, then Start.")
    return dynamics.dynamics_figure({label: {"mode": mode, "rows": metrics}}, title="This job", height=480)


def make_callbacks(st: Studio):
    def status():
        job = st.jobs.status()
        if job["state"] == "idle":
            return "No training job yet.", curves_figure([])
        eta = f", ETA {job['eta_s'] / 60:.1f} min" if job.get("eta_s") else ""
        line = (f"**{job['state']}**: {job['mode']} on {job['model']} / {job['task']}: step {job['step']}/"
                f"{job['steps']}{eta} · output `{job['out']}`")
        if job["state"] == "failed":
            line += "\n\n```\n" + job["log_tail"][-600:] + "\n```"
        return line, curves_figure(job["metrics"], Path(job["out"]).name, job.get("mode", ""))

    @user_error
    def start(model, task, mode, steps, group, batch, lr, max_new, name):
        st.host.check_training()
        name = "".join(c for c in (name or "").strip() if c.isalnum() or c in "-_") or f"{mode}-{int(time.time())}"
        if mode not in ("hrpo", "grpo"):
            raise ValueError(f"mode must be hrpo or grpo, got {mode!r}")
        sizes = dict(steps=number(steps, "steps", True), group_size=number(group, "group size", True),
                     batch_prompts=number(batch, "prompts", True),
                     max_new_tokens=number(max_new, "max new tokens", True))
        st.host.check_training_request(task, sizes["steps"], sizes["group_size"], sizes["batch_prompts"],
                                       sizes["max_new_tokens"])
        cfg = recipe(RECIPE[mode], model=st.host.resolve(model), task=task, lr=number(lr, "learning rate"),
                     out=str(st.jobs.runs_dir / name), dtype=None, **sizes)   # bf16 only where it is native
        st.jobs.start(cfg)                                # refuses while a job runs (serialised by a lock)
        return status()

    @user_error
    def stop():
        st.host.check_training()
        if not st.jobs.stop():
            raise ValueError("no training job is running")
        return status()

    @user_error
    def resume():
        st.host.check_training()
        st.jobs.resume()
        return status()
    return start, stop, resume, status


def build(st: Studio, choices: list[str]) -> gr.Dropdown | None:
    """The Train tab's components and events (inside a gr.Tab); returns its model picker (None without controls).
    The API endpoints exist on every host (and refuse where training is off)."""
    start, stop, resume, status = make_callbacks(st)
    note, shipped = st.host.training_note(), recipe(RECIPE["hrpo"])
    if note:
        gr.Markdown(note, elem_id="train-off")
    with gr.Column(visible=not note):
        with gr.Row():
            model = gr.Dropdown(choices, value="default" if "default" in choices else choices[0], label="Base model")
            task = gr.Dropdown(["arith", "gsm8k"], value="arith", label="Task", allow_custom_value=True)
            mode = gr.Radio(["hrpo", "grpo"], value="hrpo", label="Mode")
            name = gr.Textbox(label="Run name", placeholder="my-run")
        gr.Markdown(f"The shipped checkpoints' recipe (`configs/{RECIPE['hrpo']}.json`, and its GRPO twin): "
                    f"LoRA rank {shipped.lora_rank}, gate lr {shipped.gate_lr:g}, Lambda lr {shipped.lambda_lr:g}, "
                    f"weight decay {shipped.weight_decay:g}; bf16 where this CPU or GPU has it natively, else fp32; "
                    "change the fields below to try others.")
        with gr.Row():
            steps = gr.Number(shipped.steps, label="steps")
            group = gr.Number(shipped.group_size, label="group size G")
            batch = gr.Number(shipped.batch_prompts, label="prompts per step")
            lr = gr.Number(shipped.lr, label="LoRA lr")
            max_new = gr.Number(shipped.max_new_tokens, label="max new tokens")
        with gr.Row():
            start_b, stop_b, resume_b = gr.Button("Start", variant="primary"), gr.Button("Stop"), gr.Button("Resume")
        text = gr.Markdown(elem_id="train-status")
        plot = gr.Plot(curves_figure([]))
    start_b.click(start, [model, task, mode, steps, group, batch, lr, max_new, name], [text, plot],
                  api_name="train_start")
    stop_b.click(stop, None, [text, plot], api_name="train_stop")
    resume_b.click(resume, None, [text, plot], api_name="train_resume")
    gr.Timer(2.0, active=not note).tick(status, None, [text, plot], api_name="train_status")
    return model

"""The Gradio app's tabs (one builder per tab, wiring its own events), hosting policy and ZeroGPU support;
background training jobs (jobs.py) and the bound on the app's resident memory (memory.py).

app.py assembles them; nothing in hrpo/ or analysis/ imports from here.
"""

"""The Gradio app's tabs (one builder per tab, wiring its own events), hosting policy and ZeroGPU support.

app.py assembles them; nothing in hrpo/ or analysis/ imports from here.
"""

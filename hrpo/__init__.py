"""HRPO studio core: hybrid latent reasoning (arXiv 2505.18454) on any HF causal LM.

Public entry points: `load_model` (hrpo.models), `rollout` / `stream_rollout` (hrpo.rollout),
`ThinkingResidualGate` (hrpo.gate). No gradio import anywhere under hrpo/.
"""

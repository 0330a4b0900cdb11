"""HRPO studio core: hybrid latent reasoning (arXiv 2505.18454) on any HF causal LM.

Public entry points, imported from their modules (this package imports nothing itself, so a light module
such as hrpo.errors or hrpo.config loads without torch's model stack):
  hrpo.models.load_model            a model spec (or checkpoint directory) -> HybridModel
  hrpo.rollout.rollout              batched hybrid decoding -> list[Trace]; Decoder(...).steps() streams
  hrpo.static_decoder.make_decoder        the decoder a device wants (StaticDecoder with CUDA graphs, else Decoder)
  hrpo.gate.ThinkingResidualGate    the gate that mixes token embeddings with the previous hidden state
  hrpo.trainer.Trainer              HRPO / GRPO training; hrpo.evaluate.evaluate
  python -m hrpo                    the command line (hrpo/cli.py)
No gradio import anywhere under hrpo/, nothing of the app or of hosting (tests/test_imports.py).
"""

"""Analysis of hybrid reasoning traces: pure functions, traces in, DataFrames and plotly figures out.

projections  per-step top-k tokens of the latent, the fed input and the logit lens (chunked cosine top-k)
gates        gate a / hidden ratio per step, recomputed distribution over H, summaries by position
scripts      Unicode-script mix of sampled and latent-neighbour tokens; MGSM cross-language comparison
lengths      completion lengths and accuracy of several models on the same prompts, paired differences
maps         UMAP (PCA for few points) of latents among token embeddings
export       traces <-> JSON (tensors included) and long CSV
plots        plotly figures from the DataFrames
replay       counterfactual replays with the mixing switched off / the gate clamped from step k
report       the `python -m analysis compare` runner and its self-contained HTML report
Test: pytest tests/test_analysis_*.py
"""

"""Analysis of hybrid reasoning traces: DataFrames and plotly figures from traces and run logs.

Pure (traces / frames in, frames / figures out; no model is loaded, nothing is decoded):
projections      per-step top-k tokens of the latent, the fed input and the logit lens (chunked cosine top-k vs E)
gates            gate a / hidden ratio per step, distribution over H recomputed from a given gate, means by position
maps             UMAP (PCA for few points) of latents among token embeddings
plots            plotly figures from the DataFrames
export           traces <-> JSON (tensors included) and long CSV; export_dir: the app's temp download directory
dynamics         training-dynamics figure (paper Fig. 4) from runs' metrics.jsonl / eval.jsonl (reads those files)
Decode (take a model or load one from a spec and run hrpo's decoders; their frame and figure helpers are pure):
lengths          lengths and accuracy of several models on the same prompts; run_lengths loads each, hrpo.evaluate
replay           counterfactual re-decodes (make_decoder) with the mixing off / the gate clamped from step k
report           `python -m analysis compare`: run_compare loads each model and decodes the task; the HTML report
unicode_scripts  Unicode-script mix of sampled and latent-neighbour tokens; compare_languages decodes MGSM problems
crosslingual     `python -m analysis crosslingual`: per model and MGSM language, text and latent neighbours by
                 script relative to the prompt's (run_crosslingual loads each model)
Nothing here imports the app (studio, app.py, gradio; tests/test_imports.py).
Test: pytest tests/test_analysis_*.py
"""

"""Completion lengths of several models/checkpoints on the same prompts, with accuracy beside them.

Pure part: rows in, DataFrames out.  `rows` are hrpo.evaluate.evaluate's per-problem dicts
(question, reference, completion, answer, correct, formatted, reward, num_tokens, hidden_ratio);
rows_from_traces builds the same dicts from decoded traces.
  length_table(rows_by_model)  long frame, one row per (model, problem)
  length_summary(table)        per model: n, mean/median/std/p10/p90 length, accuracy, format rate
  paired_differences(table)    per (model, problem): length minus the first model's on that problem
  paired_summary(paired)       per model: mean/median difference, share shorter/longer than the first
Runner: run_lengths(specs, problems, cfg) loads each model and calls hrpo.evaluate.evaluate.
Test: pytest tests/test_analysis_lengths.py
"""
import pandas as pd

TABLE_COLUMNS = ["model", "order", "problem", "num_tokens", "correct", "formatted", "reward", "hidden_ratio",
                 "answer", "reference"]


def unique_labels(specs) -> list[str]:
    """Model specs as labels, with '#2', '#3' appended to repeats so every model stays apart."""
    seen, out = {}, []
    for s in specs:
        seen[s] = seen.get(s, 0) + 1
        out.append(s if seen[s] == 1 else f"{s}#{seen[s]}")
    return out


def rows_from_traces(problems, traces) -> list[dict]:
    """evaluate()-style rows from (problem, trace) pairs, scored with hrpo.rewards.score."""
    from hrpo.rewards import score
    rows = []
    for p, tr in zip(problems, traces):
        correct, formatted = score(p.kind, tr.text, p.answer)
        hr = [s.hidden_ratio for s in tr.steps if s.thinking]
        rows.append({"question": p.question, "reference": p.answer, "completion": tr.text, "answer": tr.answer,
                     "correct": correct, "formatted": formatted, "reward": float(correct and formatted),
                     "num_tokens": len(tr.token_ids), "hidden_ratio": sum(hr) / len(hr) if hr else 0.0})
    return rows


def length_table(rows_by_model: dict) -> pd.DataFrame:
    """Long frame (TABLE_COLUMNS) from {model label: [row per problem]}, models in insertion order."""
    out = []
    for order, (model, rows) in enumerate(rows_by_model.items()):
        for i, r in enumerate(rows):
            out.append({"model": model, "order": order, "problem": i, "num_tokens": int(r["num_tokens"]),
                        "correct": bool(r.get("correct", False)), "formatted": bool(r.get("formatted", False)),
                        "reward": float(r.get("reward", 0.0)), "hidden_ratio": float(r.get("hidden_ratio", 0.0)),
                        "answer": r.get("answer"), "reference": r.get("reference")})
    return pd.DataFrame(out, columns=TABLE_COLUMNS)


def length_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per model (in order): n, length mean/median/std/p10/p90/min/max, accuracy, format rate, hidden ratio."""
    cols = ["model", "n", "mean_len", "median_len", "std_len", "p10_len", "p90_len", "min_len", "max_len",
            "accuracy", "correct_rate", "format_rate", "hidden_ratio"]
    if table.empty:
        return pd.DataFrame(columns=cols)
    g = table.groupby(["order", "model"], sort=True)
    out = g.agg(n=("problem", "size"), mean_len=("num_tokens", "mean"), median_len=("num_tokens", "median"),
                std_len=("num_tokens", lambda x: float(x.std(ddof=0))),
                p10_len=("num_tokens", lambda x: float(x.quantile(0.1))),
                p90_len=("num_tokens", lambda x: float(x.quantile(0.9))),
                min_len=("num_tokens", "min"), max_len=("num_tokens", "max"), accuracy=("reward", "mean"),
                correct_rate=("correct", "mean"), format_rate=("formatted", "mean"),
                hidden_ratio=("hidden_ratio", "mean")).reset_index()
    return out[cols]


def paired_differences(table: pd.DataFrame) -> pd.DataFrame:
    """Per (model, problem) of every model after the first: its length, the first model's, the
    difference, and both correctness flags (problems the first model lacks are dropped)."""
    cols = ["model", "problem", "num_tokens", "base_tokens", "diff", "correct", "base_correct"]
    if table.empty:
        return pd.DataFrame(columns=cols)
    first = table[table["order"] == table["order"].min()][["problem", "num_tokens", "correct"]]
    first = first.rename(columns={"num_tokens": "base_tokens", "correct": "base_correct"})
    rest = table[table["order"] != table["order"].min()].merge(first, on="problem", how="inner")
    rest = rest.assign(diff=rest["num_tokens"] - rest["base_tokens"]).sort_values(["order", "problem"])
    return rest[cols].reset_index(drop=True)


def paired_summary(paired: pd.DataFrame) -> pd.DataFrame:
    """Per model: n pairs, mean and median length difference vs the first model, share shorter/longer."""
    cols = ["model", "n", "mean_diff", "median_diff", "share_shorter", "share_longer", "accuracy_diff"]
    if paired.empty:
        return pd.DataFrame(columns=cols)
    d = paired.assign(shorter=paired["diff"] < 0, longer=paired["diff"] > 0,
                      acc_diff=paired["correct"].astype(float) - paired["base_correct"].astype(float))
    out = d.groupby("model", sort=False).agg(n=("diff", "size"), mean_diff=("diff", "mean"),
                                             median_diff=("diff", "median"), share_shorter=("shorter", "mean"),
                                             share_longer=("longer", "mean"),
                                             accuracy_diff=("acc_diff", "mean")).reset_index()
    return out[cols]


def run_lengths(specs, problems, cfg, batch_size: int = 16, load=None, **load_kw) -> tuple[pd.DataFrame, dict]:
    """Load each model spec (hrpo.models.load_model unless `load` is given), evaluate it on the same
    problems with hrpo.evaluate.evaluate; returns (length_table, {label: evaluate summary})."""
    from hrpo.evaluate import evaluate
    if load is None:
        from hrpo.models import load_model as load
    rows_by_model, summaries = {}, {}
    for label, spec in zip(unique_labels(specs), specs):
        hm = load(spec, **load_kw)
        summaries[label], rows_by_model[label] = evaluate(hm, problems, cfg, batch_size)
        del hm
    return length_table(rows_by_model), summaries

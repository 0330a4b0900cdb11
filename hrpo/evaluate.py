"""Evaluation: decode a task's problems in batches, score them, summarise.

Summary: accuracy (reward: correct AND exactly one '####'), correct_rate (ignoring format),
format_rate, mean and median completion length, mean hidden ratio over thinking steps, tokens/s.
Used by `python -m hrpo eval`, the compare runner and the benchmarks; on CUDA it decodes with the
CUDA-graph StaticDecoder, elsewhere with the eager Decoder (hrpo.static_decoder.make_decoder).
Test: pytest tests/test_trainer.py -k eval
"""
import statistics
import time

from .config import RolloutConfig
from .rewards import score
from .static_decoder import make_decoder


def evaluate(hm, problems, cfg: RolloutConfig, batch_size: int = 16, on_row=None) -> tuple[dict, list[dict]]:
    """(summary, rows): one row per problem with its completion, answer, correctness and stats."""
    rows, tokens, seconds = [], 0, 0.0
    for start in range(0, len(problems), batch_size):
        chunk = problems[start:start + batch_size]
        t0 = time.perf_counter()
        dec = make_decoder(hm, [p.question for p in chunk], cfg)
        traces = dec.run()
        seconds += time.perf_counter() - t0
        tokens += dec.generated
        for p, tr in zip(chunk, traces):
            correct, formatted = score(p.kind, tr.text, p.answer)
            hr = [s.hidden_ratio for s in tr.steps if s.thinking]
            row = {"question": p.question, "reference": p.answer, "completion": tr.text, "answer": tr.answer,
                   "correct": correct, "formatted": formatted, "reward": float(correct and formatted),
                   "num_tokens": len(tr.token_ids), "hidden_ratio": sum(hr) / len(hr) if hr else 0.0}
            rows.append(row)
            if on_row:
                on_row(row)
    n = max(1, len(rows))
    lengths = [r["num_tokens"] for r in rows] or [0]
    summary = {"n": len(rows), "accuracy": sum(r["reward"] for r in rows) / n,
               "correct_rate": sum(r["correct"] for r in rows) / n,
               "format_rate": sum(r["formatted"] for r in rows) / n,
               "mean_len": statistics.mean(lengths), "median_len": statistics.median(lengths),
               "hidden_ratio": sum(r["hidden_ratio"] for r in rows) / n,
               "tokens_per_s": tokens / seconds if seconds else 0.0}
    return summary, rows

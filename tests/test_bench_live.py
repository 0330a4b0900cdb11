"""bench/bench_live.py end to end on tiny-random: the app streams the same greedy tokens the decoder makes,
and the printed ratios are the API's median tokens/s over the decoder's and the median of per-pair ratios."""
import statistics

import pytest

from bench import bench_live

pytestmark = [pytest.mark.app, pytest.mark.slow]      # the app in a real process: minutes


def test_bench_live_measures_both_paths(tmp_path):
    out = bench_live.bench("tiny-random", tokens=16, repeats=2, log=tmp_path / "app.log")
    rows = out["rows"]
    assert [r["how"] for r in rows] == ["decoder", "api"] * 2
    assert all(r["tokens"] == 16 and r["seconds"] > 0 for r in rows)               # same work on both paths
    assert all(r["updates"] >= 1 for r in rows if r["how"] == "api")
    med = {h: statistics.median(r["tokens_per_s"] for r in rows if r["how"] == h) for h in ("decoder", "api")}
    assert out["ratio"] == med["api"] / med["decoder"]
    pairs = [rows[1]["tokens_per_s"] / rows[0]["tokens_per_s"], rows[3]["tokens_per_s"] / rows[2]["tokens_per_s"]]
    assert out["pair_ratios"] == pairs and out["pair_ratio"] == statistics.median(pairs)

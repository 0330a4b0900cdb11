"""studies/study.py report: differences are paired over problems within the same seed (matched by the -sN
name, not by order), a model is compared with itself decoded plain (NAME-plain), two single models pair."""
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write(out: Path, name: str, rewards: list[int]) -> None:
    rows = [{"reward": r, "correct": r, "formatted": 1, "num_tokens": 10, "hidden_ratio": 0.1} for r in rewards]
    (out / f"{name}__arith2.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def report(out: Path, groups: str) -> tuple[dict, str]:
    res = subprocess.run([sys.executable, "-m", "studies.study", "report", "--out", str(out),
                          "--group", groups], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    lines = re.findall(r"^(\S+) - (\S+): ([+-][\d.]+) .*seeds (.+)$", res.stdout, re.M)
    return {(a, b): (float(d), seeds) for a, b, d, seeds in lines}, res.stdout


def test_report_pairs_by_seed_and_compares_plain_decoding(tmp_path):
    n = 20
    write(tmp_path, "hrpo-x-s0", [1] * n)
    write(tmp_path, "hrpo-x-s2", [0] * n)
    write(tmp_path, "grpo-x-s1", [1] * n)          # no HRPO seed 1: must not be paired with hrpo-x-s2
    write(tmp_path, "grpo-x-s2", [0] * (n // 2) + [1] * (n // 2))
    write(tmp_path, "hrpo-x-plain-s0", [1] * (n // 4) + [0] * (3 * n // 4))
    got, text = report(tmp_path, "hrpo-x,hrpo-x-plain,grpo-x")
    assert got[("hrpo-x", "grpo-x")] == (-0.5, "s2")                 # only seed 2 is in both
    assert got[("hrpo-x", "hrpo-x-plain")] == (0.75, "s0")
    assert "hrpo-x-plain - grpo-x: no seed in common" in text


def test_report_pairs_two_single_models(tmp_path):
    write(tmp_path, "hrpo-a", [1, 1, 0, 0])
    write(tmp_path, "grpo-b", [1, 0, 0, 0])
    assert report(tmp_path, "hrpo-a,grpo-b")[0][("hrpo-a", "grpo-b")] == (0.25, "-")

"""The decode table the device check prints and writes: each contender's tokens/s, its ratio to the
authors'-style loop and to the eager decoder (sampled), and the weight-bandwidth limit of the device.

Used by gpu/gpu_check.py.  Test: pytest tests/test_gpu_pack.py -k device_check (the --quick rehearsal on CPU)
"""
BANDWIDTH_TBS = [("H200", 4.8), ("H100 PCIe", 2.0), ("H100", 3.35)]    # HBM bandwidth by device name


def bandwidth_limit(device: str, param_bytes: int | None, batch: int) -> float | None:
    """tokens/s if each step read every weight once at the device's HBM bandwidth (None: unknown device)."""
    tbs = next((b for name, b in BANDWIDTH_TBS if name in device), None)
    return batch * tbs * 1e12 / param_bytes if tbs and param_bytes else None


def decode_table(R: dict) -> list[dict]:
    """The decode contenders that ran, tokens/s, x the authors'-style loop, x eager (sampled)."""
    parts, rows = R["parts"], []
    dec = parts.get("decode", {})
    loops = {k: v for name in ("authors", "reference", "generate") for k, v in parts.get(name, {}).items()}
    label = {"generate": "transformers generate() (sampling, no latents)",
             "authors": "authors'-style hybrid loop (hrpo.bench.authors_loop)",
             "reference": "bench.baselines.reference_loop (per-row re-decode)"}
    for name in ("generate", "authors", "reference"):
        if "tokens_per_s" in loops.get(name, {}):
            rows.append({"contender": label[name], "tokens_per_s": loops[name]["tokens_per_s"]})
    for what, key in (("eager Decoder", "eager"), ("StaticDecoder, graph replayed", "graph_replayed")):
        for mode in ("greedy", "sampled"):
            if key in dec.get(mode, {}):
                rows.append({"contender": f"{what} ({mode})", "tokens_per_s": dec[mode][key]["tokens_per_s"]})
    limit = bandwidth_limit(R["device"], dec.get("param_bytes"), dec.get("batch", 0))
    if limit:
        rows.append({"contender": "weight-bandwidth limit", "tokens_per_s": limit})
    authors = loops.get("authors", {}).get("tokens_per_s")
    eager = dec.get("sampled", {}).get("eager", {}).get("tokens_per_s")
    for r in rows:
        r["vs_authors"] = r["tokens_per_s"] / authors if authors else None
        r["vs_eager_sampled"] = r["tokens_per_s"] / eager if eager else None
    return rows


def print_table(rows: list[dict]) -> None:
    print("\n| contender | tokens/s | x authors' loop | x eager (sampled) |\n|---|---|---|---|")
    for r in rows:
        ratio = lambda x: f"{x:.2f}" if x else "-"                       # noqa: E731
        print(f"| {r['contender']} | {r['tokens_per_s']:,.0f} | {ratio(r['vs_authors'])} | "
              f"{ratio(r['vs_eager_sampled'])} |")

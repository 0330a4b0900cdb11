"""The hosting policy (studio/hosting.py) and the Live tab's pacing, on real files and threads:
who may load what, the pickers' choices (runs under $HRPO_RUNS, symlinks that lead out hidden), compare
requests checked before any model loads, one lock per model spec, updates grouped on a clock."""
import threading
import time
from pathlib import Path

import gradio as gr
import pytest

from hrpo.embedded import ModelSpecError
from studio import hosting
from studio.hosting import Host, ModelPool
from studio.live import paced


def fake_checkpoint(path: Path) -> Path:
    (path / "adapter").mkdir(parents=True)
    (path / "config.json").write_text('{"format": "hrpo-checkpoint", "base_model": "default"}')
    return path


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """A repository root with two checkpoints, a symlink leading outside, and a runs dir elsewhere."""
    monkeypatch.setattr(hosting.checkpoint, "is_checkpoint", lambda p: (Path(p) / "config.json").is_file())
    root, runs, outside = tmp_path / "repo", tmp_path / "elsewhere" / "runs", tmp_path / "outside"
    fake_checkpoint(root / "checkpoints" / "smollm2-arith-hrpo")
    fake_checkpoint(root / "checkpoints" / "smollm2-arith-grpo")
    fake_checkpoint(outside / "secret")
    (root / "checkpoints" / "leak").symlink_to(outside / "secret")
    fake_checkpoint(runs / "my-run" / "checkpoints" / "step-000002")
    return root, runs


def test_host_from_env():
    local = Host.from_env("/r", "/r/runs", {})
    assert not local.hosted and local.allow_training and local.max_new_tokens == 2048 and not local.compare_limits
    space = Host.from_env("/r", "/r/runs", {"SPACE_ID": "a/b"})
    assert space.hosted and not space.zero_gpu and not space.allow_training and space.max_prompt_chars == 2000
    assert Host.from_env("/r", "/r/runs", {"SPACE_ID": "a/b", "HRPO_ALLOW_TRAINING": "1"}).allow_training
    zero = Host.from_env("/r", "/r/runs", {"SPACE_ID": "a/b", "SPACES_ZERO_GPU": "true", "HRPO_ALLOW_TRAINING": "1"})
    assert zero.zero_gpu and not zero.allow_training and "ZeroGPU" in zero.training_note()
    with pytest.raises(ValueError, match="switched off on this host .ZeroGPU."):
        zero.check_training()
    assert not Host.from_env("/r", "/r/runs", {"SPACES_ZERO_GPU": "true"}).zero_gpu     # only on a Space


def test_choices_and_opening_model(tree):
    root, runs = tree
    local = Host(root=root, runs_dir=runs)
    choices = local.model_choices()
    assert choices[:3] == ["default", "checkpoints/smollm2-arith-grpo", "checkpoints/smollm2-arith-hrpo"]
    # runs under $HRPO_RUNS, outside the repo
    assert str(runs / "my-run" / "checkpoints" / "step-000002") in choices
    assert "checkpoints/leak" not in choices                          # a symlink leading out is hidden
    assert local.live_default(choices) == "checkpoints/smollm2-arith-hrpo"
    hosted = Host(root=root, runs_dir=runs, hosted=True)
    assert hosted.model_choices() == choices[:3]
    assert hosted.live_default(hosted.model_choices()) == "checkpoints/smollm2-arith-hrpo"   # hosted too
    chosen = Host(root=root, runs_dir=runs, hosted=True, default_model="tiny-random", model_chosen=True)
    assert chosen.live_default(chosen.model_choices()) == "tiny-random"                       # HRPO_MODEL decides
    assert local.compare_default(choices) == choices[:3]


@pytest.mark.parametrize("installed", [True, False])
def test_the_multilingual_base_is_offered_locally_when_installed(tree, monkeypatch, installed):
    root, runs = tree
    monkeypatch.setattr("studio.hosting.multilingual_base_installed", lambda: installed)
    assert ("gemma3-270m" in Host(root=root, runs_dir=runs).model_choices()) is installed
    assert "gemma3-270m" not in Host(root=root, runs_dir=runs, hosted=True).model_choices()


def test_examples_in_other_languages_open_the_multilingual_model(tree, monkeypatch):
    """Host.multilingual_default: the shipped multilingual HRPO checkpoint, else locally the multilingual base,
    else none; live.example_model switches the Live model for picked examples only."""
    from studio.common import Studio
    from studio.live import ENGLISH_EXAMPLES, MULTILINGUAL_EXAMPLES, example_model
    root, runs = tree
    zh, en = next(iter(MULTILINGUAL_EXAMPLES)), next(iter(ENGLISH_EXAMPLES))
    monkeypatch.setattr("studio.hosting.multilingual_base_installed", lambda: False)
    bare = Studio(host=Host(root=root, runs_dir=runs), pool=None, jobs=None, traces=None)
    assert bare.host.multilingual_default(bare.host.model_choices()) is None
    assert example_model(bare, zh, "checkpoints/smollm2-arith-hrpo") == gr.skip()      # nothing to open: stays
    monkeypatch.setattr("studio.hosting.multilingual_base_installed", lambda: True)
    local = Studio(host=Host(root=root, runs_dir=runs), pool=None, jobs=None, traces=None)
    assert example_model(local, zh, "checkpoints/smollm2-arith-hrpo") == "gemma3-270m"
    assert example_model(local, en, "gemma3-270m") == "checkpoints/smollm2-arith-hrpo"
    assert example_model(local, en, "default") == gr.skip()             # an English example keeps a chosen model
    assert example_model(local, "my own question", "gemma3-270m") == gr.skip()
    hosted = Studio(host=Host(root=root, runs_dir=runs, hosted=True), pool=None, jobs=None, traces=None)
    assert example_model(hosted, zh, "checkpoints/smollm2-arith-hrpo") == gr.skip()    # hosted: no Gemma base
    assert hosted.host.start_up_models(hosted.host.model_choices()) == ["checkpoints/smollm2-arith-hrpo"]
    fake_checkpoint(root / "checkpoints" / "gemma3-270m-multi-hrpo")
    for host in (hosted.host, Host(root=root, runs_dir=runs, hosted=True, zero_gpu=True)):  # shipped: loaded too
        assert host.start_up_models(host.model_choices())[0] == "checkpoints/smollm2-arith-hrpo"
        assert host.start_up_models(host.model_choices())[-1] == "checkpoints/gemma3-270m-multi-hrpo"
    for st in (local, hosted):
        assert example_model(st, zh, "checkpoints/smollm2-arith-hrpo") == "checkpoints/gemma3-270m-multi-hrpo"
        assert example_model(st, zh, "checkpoints/gemma3-270m-multi-hrpo") == gr.skip()


def test_hosted_resolve_allows_only_checkpoints_inside(tree):
    root, runs = tree
    host = Host(root=root, runs_dir=runs, hosted=True)
    assert host.resolve("default") == "default"
    hrpo_dir = (root / "checkpoints" / "smollm2-arith-hrpo").resolve()
    assert host.resolve("checkpoints/smollm2-arith-hrpo") == str(hrpo_dir)
    for bad in ("checkpoints/leak", "checkpoints/../checkpoints/leak", "/etc", "tiny-random", str(runs / "my-run")):
        with pytest.raises(ModelSpecError, match="not allowed"):
            host.resolve(bad)
    assert Host(root=root, runs_dir=runs).resolve("tiny-random") == "tiny-random"


def test_compare_request_is_checked_before_any_work(tree):
    root, runs = tree
    host = Host(root=root, runs_dir=runs, hosted=True, compare_limits=dict(models=4, problems=20, new_tokens=256,
                                                                           tokens=8192))
    assert host.compare_request(["default"] * 40, 20, 256) == ["default"]       # 40 copies are one model
    for specs, limit, new in [(list("abcde"), 1, 16), (["default"], 21, 16), (["default"], 1, 257),
                              (["default", "checkpoints/smollm2-arith-hrpo"], 20, 256)]:
        with pytest.raises(ValueError, match="hosted mode: at most 4 models, 20 problems, 256 new tokens and 8192"):
            host.compare_request(specs, limit, new)
    with pytest.raises(ValueError, match="latent ablation decodes twice"):
        host.compare_request(["default"], 20, 256, ablation=True)
    with pytest.raises(ModelSpecError, match="not allowed"):                     # refused before decoding
        host.compare_request(["default", "tiny-random"], 1, 16)
    with pytest.raises(ValueError, match="pick at least one model"):
        host.compare_request([], 1, 16)


def test_the_readme_quotes_the_hosted_limits():
    """The hosted limits are defined once (studio/hosting.py); the README's sentence is generated from them."""
    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8").split())
    assert Host(root=Path("/r"), runs_dir=Path("/r/runs")).limits_text() in readme
    assert Host(root=Path("/r"), runs_dir=Path("/r/runs"), hosted=True).queue["max_size"] == 64


def test_prompt_checks():
    host = Host(root=Path("/r"), runs_dir=Path("/r/runs"), hosted=True)
    host.check_prompt("fine", 512)
    for prompt, new, message in [("  ", 8, "the prompt is empty"), ("x" * 2001, 8, "limit here is 2000"),
                                 ("a \ud800 b", 8, "lone surrogate"), ("fine", 513, "at most 512 new tokens")]:
        with pytest.raises(ValueError, match=message):
            host.check_prompt(prompt, new)


def test_hosted_training_takes_built_in_tasks_and_bounded_sizes(tmp_path):
    """Hosted with training on: a task naming a server file (an existence oracle, a file read) and unbounded sizes
    are refused before a job starts; locally anything TrainConfig accepts goes."""
    host = Host(root=Path("/r"), runs_dir=Path("/r/runs"), hosted=True, training_flag=True)
    host.check_training_request("forms", 300, 8, 4, 96)
    for task, sizes, message in [("jsonl:/etc/passwd", (10, 8, 4, 96), "built-in task only"),
                                 (f"jsonl:{tmp_path}/missing.jsonl", (10, 8, 4, 96), "built-in task only"),
                                 ("nope", (10, 8, 4, 96), "unknown task"),
                                 ("arith", (10**9, 8, 4, 96), "steps 1000000000 .at most 500"),
                                 ("arith", (10, 10**6, 10**6, 100000), "group_size 1000000 .at most 16.*batch_prompts"),
                                 ("arith", (10, 8, 4, 513), "max new tokens 513 .at most 512")]:
        with pytest.raises(ValueError, match=message):
            host.check_training_request(task, *sizes)
    Host(root=Path("/r"), runs_dir=Path("/r/runs")).check_training_request("jsonl:/x.jsonl", 10**6, 64, 64, 4096)


def test_one_slow_load_does_not_block_a_loaded_model(monkeypatch):
    """Model A loads (slowly, like a GGUF conversion) while B, already loaded, is served at once; two
    requests for A load it once."""
    import hrpo.models
    release, loads = threading.Event(), []

    def fake_load(spec, device=None):
        loads.append(spec)
        if spec == "A":
            assert release.wait(10)
        return f"model {spec}"
    monkeypatch.setattr(hrpo.models, "load_model", fake_load)
    pool = ModelPool()
    assert pool.get("B") == "model B"
    waiters = [threading.Thread(target=pool.get, args=("A",)) for _ in range(2)]
    for w in waiters:
        w.start()
    time.sleep(0.2)
    assert pool.line("A") == "**A**: loading..."
    t0 = time.perf_counter()
    assert pool.get("B") == "model B" and time.perf_counter() - t0 < 0.5       # not behind A's load
    release.set()
    for w in waiters:
        w.join(10)
    assert loads == ["B", "A"] and pool.line("A") == "**A**: ready"


def test_one_model_per_path_however_it_is_spelled(tmp_path, monkeypatch):
    """checkpoints/x, checkpoints/x/, ./checkpoints/x and the absolute path are one model, loaded once."""
    import hrpo.models
    loads = []
    monkeypatch.setattr(hrpo.models, "load_model", lambda spec, device=None: loads.append(spec) or object())
    monkeypatch.chdir(tmp_path)
    (tmp_path / "checkpoints" / "x").mkdir(parents=True)
    pool = ModelPool()
    models = {id(pool.get(s)) for s in ["checkpoints/x", "checkpoints/x/", "./checkpoints/x",
                                        str(tmp_path / "checkpoints" / "x")]}
    assert len(models) == 1 and len(loads) == 1 and pool.line("./checkpoints/x") == "**./checkpoints/x**: ready"


def test_a_failed_load_is_one_line_in_the_status(monkeypatch):
    import hrpo.models
    monkeypatch.setattr(hrpo.models, "load_model", lambda spec, device=None: (_ for _ in ()).throw(
        ModelSpecError("unknown model spec 'x'\nmore detail")))
    pool = ModelPool()
    with pytest.raises(ModelSpecError):
        pool.get("x")
    assert pool.line("x") == "**x**: failed: unknown model spec 'x'"


def test_preload_calls_then_after_a_successful_load_only(monkeypatch):
    """The app freezes the GC's view of the heap once a model is in (studio.memory.freeze_long_lived): `then` runs
    after each load, in the loading thread, and not when a load fails; the next model still loads."""
    import hrpo.models
    monkeypatch.setattr(hrpo.models, "load_model", lambda spec, device=None: (_ for _ in ()).throw(
        ModelSpecError("no such model")) if spec == "bad" else f"model {spec}")
    pool, calls = ModelPool(), []
    pool.preload(["good", "bad", "next"], then=lambda: calls.append(sorted(pool.models))).join(10)
    assert calls == [["good"], ["good", "next"]] and pool.line("bad") == "**bad**: failed: no such model"


def test_freeze_long_lived_takes_the_heap_out_of_full_collections():
    import gc

    from studio.memory import freeze_long_lived
    try:
        before = gc.get_freeze_count()
        kept = [{"n": i} for i in range(1000)]
        frozen = freeze_long_lived()
        scanned = {id(o) for o in gc.get_objects(2)}
        assert frozen >= before + len(kept) and not any(id(x) in scanned for x in kept)
        cycle = []
        cycle.append(cycle)                      # garbage made after the freeze is still collected
        del cycle
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()


def test_paced_groups_events_on_a_clock():
    ticks = iter([0.0, 0.05, 0.10, 0.16, 0.20, 0.40, 0.41, 0.5, 0.6])
    events = ([(0, f"s{i}")] for i in range(7))
    groups = [(list(steps), done) for steps, done in paced(events, every=0.15, clock=lambda: next(ticks))]
    # the first token at once (t=0), then t=0.16 and t=0.40 (>= 0.15 s apart), then the final group
    assert [len(s) for s, _ in groups] == [1, 4, 6, 7] and [d for _, d in groups] == [False, False, False, True]
    assert groups[-1][0] == [f"s{i}" for i in range(7)]                       # every step, in order


"""The repository stands on its own: what a clone holds, put in an empty folder with nothing beside it, loads
every built-in task (arith, GSM8K train and test, every MGSM language) with $HRPO_DATA unset, in a fresh
interpreter whose working directory is that folder; and no file names a path outside the repository.

A clone holds the committed files.  So that the check also covers work not committed yet, the first test
copies what `git ls-files --cached --others --exclude-standard` lists (what a clone holds once the working
tree is committed: no .venv, runs/ or caches); the second makes a real `git clone` of HEAD once data/ is
committed there.  Run: pytest tests/test_standalone.py
"""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Runs in the copy, with the copy as working directory: every task loads from the copy's own data/.
LOAD_EVERY_TASK = r"""
import json, os, sys
from pathlib import Path
sys.modules["datasets"] = None            # no hub fallback for GSM8K: the files must be there
import hrpo.tasks as tasks
here = Path.cwd().resolve()
assert Path(tasks.__file__).resolve().is_relative_to(here), f"hrpo imported from {tasks.__file__}, not {here}"
assert "HRPO_DATA" not in os.environ
assert tasks.data_root().resolve() == here / "data", tasks.data_root()
specs = ([("arith", "train"), ("arith", "test")] + [(f"arith:{level}", "test") for level in tasks.ARITH_LEVELS]
         + [("gsm8k", "train"), ("gsm8k", "test")] + [(f"mgsm:{lang}", "test") for lang in tasks.MGSM_LANGS])
sizes = {}
for spec, split in specs:
    task = tasks.load_task(spec, split)
    assert task.skipped == 0 and all(p.question and p.answer for p in task.problems), (spec, task.message)
    sizes[f"{spec}/{split}"] = len(task)
print(json.dumps(sizes))
"""
EXPECTED = {"arith/train": 5000, "arith/test": 500, **{f"arith:{level}/test": 500 for level in range(1, 6)},
            "gsm8k/train": 7473, "gsm8k/test": 1319,
            **{f"mgsm:{lang}/test": 250 for lang in ("bn", "de", "en", "es", "fr", "ja", "ru", "sw", "te", "th", "zh")}}
TEXT_SUFFIXES = {".py", ".sh", ".md", ".txt", ".toml", ".cfg", ".ini", ".json", ".yml", ".yaml", ".html", ""}
# a path into the folder beside the repository that the development machine had (data, design notes)
OUTSIDE = re.compile(r"\.\./shared\b|/work/shared\b|[\"']shared[\"']\s*/\s*[\"'](?:data|DESIGN)")
MD_LINK = re.compile(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def git(*args) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout


def clone_files() -> list[str]:
    """The files a clone holds once the working tree is committed (deleted-but-tracked files left out)."""
    try:
        listed = git("ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout (or no git): nothing to clone")
    return sorted(f for f in listed if f and os.path.lexists(REPO / f))


def copy_files(files: list[str], dest: Path) -> None:
    """Copy the files, symlinks as symlinks (a link to outside the repository must dangle in the copy)."""
    for name in files:
        src, dst = REPO / name, dest / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)


def load_every_task(repo: Path) -> dict:
    """Run LOAD_EVERY_TASK in a fresh interpreter in `repo`; the task sizes it printed."""
    env = {k: v for k, v in os.environ.items() if k not in ("HRPO_DATA", "PYTHONPATH")}
    res = subprocess.run([sys.executable, "-c", LOAD_EVERY_TASK], cwd=repo, env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def lone_folder(tmp_path: Path) -> Path:
    """<tmp>/box/repo: the repository's folder, alone in its parent (no sibling folder to lean on)."""
    box = tmp_path / "box"
    box.mkdir()
    return box / "repo"


def test_a_copy_of_what_a_clone_holds_loads_every_task(tmp_path):
    files = clone_files()
    assert "data/README.md" in files and "data/gsm8k/train.jsonl.gz" in files, "data/ is ignored by git"
    repo = lone_folder(tmp_path)
    copy_files(files, repo)
    assert [p.name for p in repo.parent.iterdir()] == ["repo"]
    assert load_every_task(repo) == EXPECTED


def test_a_git_clone_of_head_loads_every_task(tmp_path):
    clone_files()                                              # skips outside a git checkout
    if not git("ls-tree", "-r", "--name-only", "HEAD", "--", "data/").strip():
        pytest.skip("data/ is not committed yet; the copy test above checks the working tree")
    repo = lone_folder(tmp_path)
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(repo)], check=True, capture_output=True, timeout=300)
    assert load_every_task(repo) == EXPECTED


def test_no_file_names_a_path_outside_the_repository():
    """No text file reads or links the development machine's folder beside the repository, and every
    relative Markdown link resolves to a file inside the repository."""
    problems = []
    for name in clone_files():
        path = REPO / name
        if path.suffix not in TEXT_SUFFIXES or path.is_symlink() or name == "tests/test_standalone.py":
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, IsADirectoryError):
            continue
        problems += [f"{name}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}" for m in OUTSIDE.finditer(text)]
        if path.suffix == ".md":
            for m in MD_LINK.finditer(text):
                target = m.group(1).split("#", 1)[0]
                if not target or re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):   # anchors, http:, mailto:
                    continue
                resolved = (path.parent / target).resolve()
                if not resolved.is_relative_to(REPO) or not resolved.exists():
                    problems.append(f"{name}: link {m.group(1)} (-> {resolved})")
    assert not problems, "references outside the repository:\n" + "\n".join(problems)

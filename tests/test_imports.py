"""The import graph of hrpo/, analysis/ and studio/, read with `ast` (nothing is imported): every import
statement counts, at module level, inside functions and under `if TYPE_CHECKING`.
  - no circle among the modules of hrpo, of analysis or of studio (not even through a function-level import)
  - the core knows nothing of the app: no hrpo module imports analysis, studio, app or gradio, nor the
    development folders (bench, scripts, gpu, studies)
  - analysis knows nothing of the UI: no analysis module imports studio, app or gradio
  - the core is the core: every hrpo module that something imports is imported by more than the app (studio/,
    app.py); among hrpo/, analysis/, studies/, scripts/, bench/, gpu/, studio/ and app.py, a module imported only
    by the app (or only by such modules) belongs in studio/.  hrpo/__main__.py and hrpo/cli.py are entry points.
  - the typed user-facing errors are defined once, in hrpo/errors.py, and the app imports them from there
Test: pytest tests/test_imports.py"""
import ast
from pathlib import Path

import pytest

from conftest import ROOT

PACKAGES = ("hrpo", "analysis", "studio")
USERS = ("hrpo", "analysis", "studies", "scripts", "bench", "gpu", "studio")   # every package that may import hrpo
APP = ("studio", "app")                                                        # the app: studio/ and app.py
ENTRY_POINTS = ("hrpo.__main__", "hrpo.cli")                                   # run as programs: used by the core
DEVELOPMENT = ("bench", "scripts", "gpu", "studies")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.Module, name: str, is_package: bool, modules: set[str]) -> set[str]:
    """Every module `name` imports: `import a.b` -> a.b; `from a import b` -> a.b when that is a module, else a;
    relative imports resolved against `name` (a package's own name for its __init__)."""
    here = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")[:len(here.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            subs = {f"{target}.{alias.name}" for alias in node.names} & modules
            found |= subs or {target}
            if subs and len(subs) < len(node.names):       # `from pkg import module, function`
                found.add(target)
    found.discard(name)
    return found


def import_graph(root: Path = ROOT, packages=PACKAGES, top=()) -> dict[str, set[str]]:
    """{module: modules it imports} for every .py file of `packages` under `root` and the top-level files `top`
    (app.py -> module app; imports of anything)."""
    files = {module_name(p, root): p for pkg in packages for p in sorted((root / pkg).rglob("*.py"))}
    files |= {module_name(root / f, root): root / f for f in top if (root / f).is_file()}
    return {name: imported(ast.parse(path.read_text(encoding="utf-8"), str(path)), name,
                           path.name == "__init__.py", set(files))
            for name, path in files.items()}


def cycles(graph: dict[str, set[str]], within: str) -> list[list[str]]:
    """The import circles among the modules of package `within` (one path per circle found, depth first)."""
    inside = {m: {t for t in ts if t in graph and t.split(".")[0] == within}
              for m, ts in graph.items() if m.split(".")[0] == within}
    found, state = [], {}                        # state: 1 on the current path, 2 done

    def visit(m, path):
        state[m] = 1
        for t in sorted(inside[m]):
            if state.get(t) == 1:
                found.append(path[path.index(t):] + [t])
            elif t not in state:
                visit(t, path + [t])
        state[m] = 2

    for m in sorted(inside):
        if m not in state:
            visit(m, [m])
    return found


def importers_of(graph: dict[str, set[str]], package: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(f"{m} imports {t}" for m, ts in graph.items() if m.split(".")[0] == package
                  for t in ts if t.split(".")[0] in forbidden)


def app_only(graph: dict[str, set[str]], core: str = "hrpo", app=APP, entry_points=ENTRY_POINTS) -> list[str]:
    """The modules of package `core` that something imports and whose importers are all app modules (first name
    in `app`) or such modules themselves (a helper used only by an app-only module is the app's too); entry points
    are used by the core whoever imports them."""
    users = {m: {u for u, ts in graph.items() if m in ts} for m in graph
             if m.split(".")[0] == core and m != core and m not in entry_points}
    found: set[str] = set()
    while more := {m for m, us in users.items()
                   if m not in found and us and all(u.split(".")[0] in app or u in found for u in us)}:
        found |= more
    return sorted(found)


def test_the_graph_sees_every_kind_of_import():
    graph = import_graph()
    assert {"hrpo.models", "hrpo.checkpoint", "hrpo.rundir", "analysis.report", "studio.hosting"} <= set(graph)
    assert "hrpo.checkpoint" in graph["hrpo.models"]                  # from .checkpoint import ...
    assert "hrpo.evaluate" in graph["hrpo.trainer"]                   # inside a method
    assert {"hrpo.checkpoint", "hrpo.rundir"} <= graph["hrpo.trainer"]   # from . import checkpoint as ckpt
    assert "analysis.unicode_scripts" in graph["analysis.report"]     # from . import gates, ..., unicode_scripts
    assert {"hrpo.checkpoint", "hrpo.rundir"} <= graph["studio.hosting"]  # from hrpo import checkpoint, rundir
    assert "gradio" in {t.split(".")[0] for t in graph["studio.common"]}


def test_a_circle_is_found(tmp_path):
    """The checker itself: a circle through a function-level import, and one through `from . import`."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import f\n")
    (pkg / "b.py").write_text("def f():\n    from pkg.a import g\n")
    (pkg / "c.py").write_text("from . import d\n")
    (pkg / "d.py").write_text("import pkg.c\n")
    (pkg / "e.py").write_text("from . import a\nimport gradio\n")
    graph = import_graph(tmp_path, ("pkg",))
    assert sorted(cycles(graph, "pkg")) == [["pkg.a", "pkg.b", "pkg.a"], ["pkg.c", "pkg.d", "pkg.c"]]
    assert importers_of(graph, "pkg", ("gradio",)) == ["pkg.e imports gradio"]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_circle(package):
    """Within each package; between them there can be none while the two tests below hold."""
    assert cycles(import_graph(), package) == []


def test_the_core_imports_no_app_code():
    assert importers_of(import_graph(), "hrpo", ("analysis", "studio", "app", "gradio") + DEVELOPMENT) == []


def test_an_app_only_module_is_found(tmp_path):
    """The checker itself: core.c is imported only by the app, core.e only by core.c (so the app's too); a module
    the app shares with tools, with the core or with an entry point, and one nobody imports, pass."""
    for pkg in ("core", "ui", "tools"):
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    files = {"core/a.py": "", "core/b.py": "from . import a\n", "core/c.py": "from .e import f\n", "core/d.py": "",
             "core/e.py": "", "core/g.py": "", "core/h.py": "", "core/cli.py": "from . import h\n",
             "core/lonely.py": "", "ui/x.py": "from core import c, d\nimport core.a\n",
             "tools/y.py": "def f():\n    from core.d import z\n", "app.py": "from core import cli, g\nimport ui.x\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    graph = import_graph(tmp_path, ("core", "ui", "tools"), top=("app.py",))
    assert graph["app"] == {"core.cli", "core.g", "ui.x"}
    assert app_only(graph, "core", ("ui", "app"), ("core.cli",)) == ["core.c", "core.e", "core.g"]
    assert app_only(graph, "core", ("ui", "app"), ("core.cli", "core.g")) == ["core.c", "core.e"]


def test_every_core_module_serves_more_than_the_app():
    """A module of hrpo/ that only studio/ or app.py imports is app code: it goes to studio/ (as studio/jobs.py
    and studio/memory.py did)."""
    graph = import_graph(ROOT, USERS, top=("app.py",))
    assert {"app", "studio.jobs", "studio.memory", "bench.baselines", "bench.app_process"} <= set(graph)
    assert "studio.memory" in graph["app"] and "hrpo.bench" in graph["bench.baselines"]
    assert app_only(graph) == []


def test_analysis_imports_no_ui():
    assert importers_of(import_graph(), "analysis", ("studio", "app", "gradio")) == []


def test_the_typed_errors_are_defined_once_in_hrpo_errors():
    """ConfigError, TrainingError, ModelSpecError, CheckpointError and DiskFullError: classes of hrpo/errors.py
    only, the same objects under their old homes, and the app takes them from hrpo.errors."""
    from hrpo import checkpoint, config, embedded, errors, models
    names = ("ConfigError", "TrainingError", "ModelSpecError", "CheckpointError", "DiskFullError")
    defined, elsewhere = [], []
    for path in sorted(p for pkg in USERS for p in (ROOT / pkg).rglob("*.py")) + [ROOT / "app.py"]:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        where = path.relative_to(ROOT).as_posix()
        defined += [where for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name in names]
        if where == "app.py" or where.startswith("studio/"):
            elsewhere += [f"{where}: {a.name} from {n.module}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                          for a in n.names if a.name in names and n.module != "hrpo.errors"]
    assert defined == ["hrpo/errors.py"] * len(names) and elsewhere == []
    assert config.ConfigError is errors.ConfigError and config.TrainingError is errors.TrainingError
    assert embedded.ModelSpecError is errors.ModelSpecError and models.ModelSpecError is errors.ModelSpecError
    assert checkpoint.CheckpointError is errors.CheckpointError and checkpoint.DiskFullError is errors.DiskFullError


def test_the_design_layout_names_every_core_module():
    """docs/DESIGN.md section 3 lists every module of hrpo/ (a new or renamed module is described there too)."""
    from conftest import ROOT
    text = (ROOT / "docs" / "DESIGN.md").read_text(encoding="utf-8")
    layout = text[text.index("## 3. Layout"):text.index("## 4. Interfaces")]
    core = layout[layout.index("hrpo/ "):layout.index("analysis/ ")]
    modules = sorted(p.name for p in (ROOT / "hrpo").glob("*.py") if not p.name.startswith("__"))
    assert [m for m in modules if m not in core] == []


def test_building_the_app_writes_nothing_into_the_checkout():
    """Gradio writes a .pyi stub beside the module of any component subclass it sees defined: the app wraps
    component instances instead (studio.common.checked_slider), so building it leaves the checkout as it was."""
    import app
    from studio.common import Studio
    from studio.jobs import JobManager
    stubs = lambda: sorted([*ROOT.glob("*.pyi"), *(p for d in ("studio", "hrpo", "analysis")  # noqa: E731
                                                  for p in (ROOT / d).rglob("*.pyi"))])
    before = stubs()
    st = Studio.create(ROOT, {"HRPO_MODEL": "tiny-random"})
    assert isinstance(st.jobs, JobManager)
    app.build(st)
    assert stubs() == before == []

"""The import graph of hrpo/, analysis/ and studio/, read with `ast` (nothing is imported): every import
statement counts, at module level, inside functions and under `if TYPE_CHECKING`.
  - no circle among the modules of hrpo, of analysis or of studio (not even through a function-level import)
  - the core knows nothing of the app: no hrpo module imports analysis, studio, app or gradio
  - analysis is pure: no analysis module imports studio, app or gradio
Test: pytest tests/test_imports.py"""
import ast
from pathlib import Path

import pytest

from conftest import ROOT

PACKAGES = ("hrpo", "analysis", "studio")


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


def import_graph(root: Path = ROOT, packages=PACKAGES) -> dict[str, set[str]]:
    """{module: modules it imports} for every .py file of `packages` under `root` (imports of anything)."""
    files = {module_name(p, root): p for pkg in packages for p in sorted((root / pkg).rglob("*.py"))}
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
    assert importers_of(import_graph(), "hrpo", ("analysis", "studio", "app", "gradio")) == []


def test_analysis_imports_no_ui():
    assert importers_of(import_graph(), "analysis", ("studio", "app", "gradio")) == []

"""Imports run one way: commands on top, then the stages, then ``objectives`` (the engine and the
definitions); no cycles, including imports made inside functions (for start-up time)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

COMMANDS = {
    "study.run",
    "study.report",
    "study.train",
    "study.lr_find",
    "study.compare_pruning",
    "study.replicate",
    "study.noise",
}
"""What people type (``python -m study.X``); benchmarks (``study.bench.*``) are commands too."""
CLI = "study.cli"
"""The commands' shared flags and one-line errors: for commands only."""


def _is_command(module: str) -> bool:
    return module in COMMANDS or module.startswith("study.bench.")


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")


def import_graph() -> dict[str, set[str]]:
    """Each project module and the project modules it imports, anywhere in its body."""
    paths = [*REPO.glob("study/**/*.py"), *REPO.glob("objectives/**/*.py")]
    modules = {_module_name(path): path for path in paths}
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
                imported |= {f"{node.module}.{alias.name}" for alias in node.names}
        graph[module] = {name for name in imported if name in modules and name != module}
    return graph


def test_the_graph_sees_imports_inside_functions() -> None:
    graph = import_graph()
    assert "study.evaluation.lr_range" in graph["study.run"], (
        "run imports the LR range test inside a function"
    )
    assert "objectives.workloads.models" in graph["objectives.workloads.registry"]


def test_objectives_never_import_the_study() -> None:
    graph = import_graph()
    upward = {m: sorted(i for i in imported if i.startswith("study")) for m, imported in graph.items()}
    assert {m: i for m, i in upward.items() if m.startswith("objectives") and i} == {}


def test_only_commands_import_the_command_line_and_no_command_imports_another() -> None:
    graph = import_graph()
    reaching_up = {
        module: sorted(i for i in imported if i == CLI or _is_command(i))
        for module, imported in graph.items()
        if not _is_command(module) and module != CLI
    }
    assert {m: i for m, i in reaching_up.items() if i} == {}
    between_commands = {
        module: sorted(i for i in imported if i in COMMANDS)
        for module, imported in graph.items()
        if module in COMMANDS
    }
    assert {m: i for m, i in between_commands.items() if i} == {}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in ``graph`` (a depth-first search), or None."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        path.append(module)
        for child in sorted(graph[module]):
            if state.get(child) == "open":
                return [*path[path.index(child) :], child]
            if child not in state and (found := visit(child)):
                return found
        state[module] = "done"
        path.pop()
        return None

    for module in sorted(graph):
        if module not in state and (found := visit(module)):
            return found
    return None


def test_there_are_no_import_cycles() -> None:
    assert _cycle(import_graph()) is None


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]


def test_the_notebook_uses_only_the_public_api() -> None:
    import json

    import objectives
    import study

    notebook = json.loads((REPO / "notebooks" / "compare_schedules.ipynb").read_text())
    cells = ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]
    code = "\n".join(line for cell in cells for line in cell.splitlines() if not line.startswith("%"))
    imported = [node for node in ast.walk(ast.parse(code)) if isinstance(node, (ast.Import, ast.ImportFrom))]
    public = {"study": set(study.__all__), "objectives": set(objectives.__all__)}
    for node in imported:
        module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
        if module.split(".")[0] in public:
            assert module in public, f"the notebook imports {module}, not the package's public API"
            assert {alias.name for alias in node.names} <= public[module]
    assert any(isinstance(n, ast.ImportFrom) and n.module == "study" for n in imported)


def test_the_public_api_names_what_it_exports() -> None:
    import objectives
    import study

    for package in (objectives, study):
        assert all(getattr(package, name) is not None for name in package.__all__)


def test_the_readme_layout_lists_every_module() -> None:
    readme = (REPO / "README.md").read_text()
    layout = readme[
        readme.index("```\nobjectives/") : readme.index("```", readme.index("```\nobjectives/") + 3)
    ]
    for package in ("objectives", "study"):
        for path in sorted((REPO / package).rglob("*.py")):
            module = path.relative_to(REPO / package).as_posix()
            if path.name == "__init__.py" or (module.startswith("bench/") and "bench/" in layout.split()):
                continue
            assert module in layout.split(), f"{package}/{module} is missing from the README's layout"


def test_the_top_of_study_shows_its_entry_points() -> None:
    """At most 12 modules at ``study/``'s top (issue 36): the commands and what they share; the
    benchmarks in ``study/bench/``, the stages' modules in their folders."""
    top = sorted(p.stem for p in (REPO / "study").glob("*.py") if p.stem != "__init__")
    assert len(top) <= 12, top
    assert not [name for name in top if name.startswith("bench")], "benchmarks live in study/bench/"


def test_no_function_is_longer_than_sixty_lines() -> None:
    """Short enough to read at a glance (issue 36): a longer one is split where it changes subject."""
    long = []
    for path in [*REPO.glob("study/**/*.py"), *REPO.glob("objectives/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                and node.end_lineno - node.lineno >= 60
            ):
                long.append(f"{_module_name(path)}.{node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert not long, long


def test_nothing_below_the_commands_sees_the_command_line() -> None:
    """Issue 36: commands turn their flags into typed arguments (``make_experiment``, the
    stages' keyword arguments); no stage, no definition imports argparse or takes its namespace."""
    below = [
        path
        for path in [*REPO.glob("study/**/*.py"), *REPO.glob("objectives/**/*.py")]
        if not _is_command(_module_name(path)) and _module_name(path) != CLI
    ]
    seeing = sorted(str(p.relative_to(REPO)) for p in below if "argparse" in p.read_text())
    assert seeing == []


STAGES = ["commands", "study.cli", "study.sweep", "study.evaluation", "study.reporting", "study.storage"]
"""The stages in order, top first: each imports only those below it (then the shared definitions
at ``study/``'s top and ``objectives``). The report reads what the evaluation stored; the
evaluation re-trains what the sweep chose."""


def _stage(module: str) -> str | None:
    if _is_command(module):
        return "commands"
    return next((s for s in STAGES[1:] if module == s or module.startswith(f"{s}.")), None)


def test_each_stage_imports_only_the_stages_below_it() -> None:
    """Issue 36: the report trains nothing (it imports neither the sweep, the evaluation nor the
    engine); the evaluation never reaches back into a command; storage knows no stage."""
    graph = import_graph()
    upward = sorted(
        f"{module} -> {imported}"
        for module, imports in graph.items()
        for imported in imports
        if (mine := _stage(module))
        and (theirs := _stage(imported))
        and STAGES.index(theirs) <= STAGES.index(mine)
        and mine != theirs
    )
    assert upward == []
    engine = sorted(
        f"{m} -> {i}"
        for m, imports in graph.items()
        for i in imports
        if _stage(m) in ("study.reporting", "study.storage") and i.startswith("objectives.engine")
    )
    assert engine == []

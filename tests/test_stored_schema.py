"""Issue 36: every stored key is named in ``objectives/stored.py``; no other module writes one as a
string literal where Optuna's records are read or written (a trial's params and attributes, a
study's attributes, a parameter dict a trial is built from or enqueued with)."""

from __future__ import annotations

import ast
from pathlib import Path

from objectives import grid, stored

REPO = Path(__file__).resolve().parents[1]
OWNERS = {"params", "user_attrs", "system_attrs", "attrs"}
"""Names of what holds stored keys: ``trial.params``, ``study.user_attrs``, ``params``, ``attrs``."""
CALLS_WITH_KEY = {"set_user_attr", "set_system_attr", "suggest_float", "suggest_int", "suggest_categorical"}
CALLS_WITH_PARAMS = {"enqueue_trial", "member_from_params"}
SCHEMA_HOMES = {"objectives/stored.py", "objectives/schedules.py", "objectives/grid.py"}
"""Where a stored name is defined: the schema, and the two names it takes from below it
(``BASE_LR``, ``SELECTION_SEED``)."""


def stored_names() -> set[str]:
    names = {value for name, value in vars(stored).items() if name.isupper() and isinstance(value, str)}
    return names | {grid.SELECTION_SEED} | set(stored.WORKLOAD_FACTS)


def _owner(node: ast.expr) -> str | None:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):  # record["params"]
        return str(node.slice.value)
    return node.id if isinstance(node, ast.Name) else None


def _literal(node: ast.AST | None, names: set[str]) -> str | None:
    is_name = isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names
    return node.value if is_name else None


def literal_keys(source: str, names: set[str]) -> list[tuple[int, str]]:
    """(line, key) of each stored name written as a literal where a stored record is used."""
    found = []
    for node in ast.walk(ast.parse(source)):
        key = None
        if isinstance(node, ast.Subscript) and _owner(node.value) in OWNERS:
            key = _literal(node.slice, names)
        elif isinstance(node, ast.Compare) and any(_owner(c) in OWNERS for c in node.comparators):
            key = _literal(node.left, names)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            method, first = node.func.attr, node.args[0]
            if method in CALLS_WITH_KEY or (method == "get" and _owner(node.func.value) in OWNERS):
                key = _literal(first, names)
            elif method in CALLS_WITH_PARAMS and isinstance(first, ast.Dict):
                key = next(filter(None, (_literal(k, names) for k in first.keys)), None)
        elif isinstance(node, ast.Call) and _owner(node.func) in CALLS_WITH_PARAMS:
            for argument in node.args:
                if isinstance(argument, ast.Dict):
                    key = key or next(filter(None, (_literal(k, names) for k in argument.keys)), None)
        if key is not None:
            found.append((node.lineno, key))
    return found


def test_no_module_writes_a_stored_key_as_a_literal() -> None:
    names = stored_names()
    offenders = [
        f"{path.relative_to(REPO)}:{line}: {key!r}"
        for folder in ("study", "objectives")
        for path in sorted((REPO / folder).rglob("*.py"))
        if path.relative_to(REPO).as_posix() not in SCHEMA_HOMES
        for line, key in literal_keys(path.read_text(), names)
    ]
    assert not offenders, "use the names in objectives/stored.py:\n" + "\n".join(offenders)


def test_the_scan_finds_each_way_a_key_is_written() -> None:
    """The check above can fail: each form it looks for, written with a literal, is found."""
    names = stored_names()
    forms = [
        'lr = trial.params["lr"]',
        'seed = trial.user_attrs.get("seed")',
        'study.set_user_attr("reevaluation", record)',
        'x = trial.suggest_float("lr", 1e-3, 1.0)',
        'ok = "lr" in params',
        'study.enqueue_trial({"lr": 0.1})',
        'member = member_from_params(experiment, {"lr": 0.1}, 0)',
        'v = attrs["target"]',
        'lr = record["params"]["lr"]',
    ]
    for form in forms:
        assert literal_keys(form, names), form
    assert not literal_keys('frame["lr"]; trial.params[stored.BASE_LR]; group["lr"] = 0.1', names)

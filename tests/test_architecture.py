"""The structure holds: every import points down the layers of pyproject.toml, and only the
units of work commit."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

#: Where a unit of work ends, and may commit: the unit of work itself, the request wrapper, the
#: job wrapper, the demo seed; so may the commands (`*/cli.py`) and the clock's jobs (`*/jobs.py`).
#: `/ready` is a unit of its own: it commits a probe row to show the database takes writes.
UNITS_OF_WORK = {"backend/unit_of_work.py", "backend/web.py", "backend/clock.py", "backend/demo.py",
                 "backend/ops/api.py"}


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml")], cwd=root,
                          env=env, capture_output=True, text=True, timeout=120)


def test_every_import_points_down_the_layers():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


@pytest.fixture
def copy_of_the_tree(tmp_path) -> Path:
    shutil.copytree(ROOT / "backend", tmp_path / "backend", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_a_domain_importing_a_read_model_above_it_breaks_the_layers(copy_of_the_tree):
    models = copy_of_the_tree / "backend" / "cases" / "models.py"
    models.write_text(models.read_text() + "\nfrom backend.caseload import service  # noqa: E402,F401\n")
    result = _lint_imports(copy_of_the_tree)
    assert result.returncode != 0
    assert "backend.cases is not allowed to import backend.caseload" in result.stdout


def test_a_package_left_out_of_the_layers_breaks_the_contract(copy_of_the_tree):
    config = copy_of_the_tree / "pyproject.toml"
    config.write_text(config.read_text().replace('"handoffs | outreach"', '"outreach"'))
    result = _lint_imports(copy_of_the_tree)
    assert result.returncode != 0
    assert "backend.handoffs" in result.stdout


def _called_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def commits_outside_units_of_work(path: str, source: str) -> list[str]:
    """Calls that commit — `….commit()`, or any function named for committing — from a function
    not named for it (`…_and_commit`, `_commit_…`), outside the units of work."""
    if path in UNITS_OF_WORK or path.endswith(("/cli.py", "/jobs.py")):
        return []
    found = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, child.name)
                continue
            if isinstance(child, ast.Call) and "commit" in _called_name(child) and "commit" not in (function or ""):
                found.append(f"{path}:{child.lineno} in {function or 'the module'}")
            visit(child, function)

    visit(ast.parse(source), None)
    return found


def test_only_the_units_of_work_and_functions_named_for_it_commit():
    found = []
    for file in sorted((ROOT / "backend").rglob("*.py")):
        path = file.relative_to(ROOT).as_posix()
        found += commits_outside_units_of_work(path, file.read_text())
    assert found == []


def test_the_commit_check_catches_a_service_that_commits():
    service = "def close_episode(*, episode):\n    episode.status = 'closed'\n    db.session.commit()\n"
    assert commits_outside_units_of_work("backend/cases/service.py", service) == [
        "backend/cases/service.py:3 in close_episode"]
    bare = "from backend.unit_of_work import commit\ndef close(*, episode):\n    commit()\n"
    assert commits_outside_units_of_work("backend/cases/service.py", bare) == ["backend/cases/service.py:3 in close"]
    hidden = "def dispatch(*, now):\n    sweep_stuck_and_commit(now=now)\n"
    assert commits_outside_units_of_work("backend/outreach/dispatcher.py", hidden) == [
        "backend/outreach/dispatcher.py:2 in dispatch"]
    named = "def sweep_stuck_and_commit(*, now):\n    unit_of_work.commit()\n"
    assert commits_outside_units_of_work("backend/outreach/dispatcher.py", named) == []

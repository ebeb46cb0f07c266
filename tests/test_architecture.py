"""The two rules of the house (README, "How it fits together"), checked on the source: commands never import
commands (nor does the library import them), and the run directory's names are spelled in rundir.py alone; and
importing transferlab changes nothing in the process until an entry point calls ``startup.prepare``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from transferlab import rundir

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "transferlab"
COMMANDS = PACKAGE / "commands"
SCRIPTS = {"train": "train", "eval": "eval", "predict": "predict", "export": "export", "probe": "probe"}


def imported_modules(path: Path) -> set[str]:
    """Every module an import statement in ``path`` names (``from a import b`` counts a and a.b)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_a_command_imports_no_other_command() -> None:
    commands = sorted(p for p in COMMANDS.glob("*.py") if p.name != "__init__.py")
    assert {p.stem for p in commands} == set(SCRIPTS.values())
    for path in commands:
        others = {f"transferlab.commands.{p.stem}" for p in commands} - {f"transferlab.commands.{path.stem}"}
        assert not imported_modules(path) & others, f"{path.name} imports another command"


def test_the_library_imports_no_command() -> None:
    for path in PACKAGE.glob("*.py"):
        found = {m for m in imported_modules(path) if m.startswith("transferlab.commands")}
        assert not found, f"{path.name} (library) imports {found}"


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_each_script_runs_its_own_command(script: str) -> None:
    commands = {m for m in imported_modules(REPO / f"{script}.py") if m.startswith("transferlab.commands.")}
    assert {m.split(".")[2] for m in commands} == {SCRIPTS[script]}


def test_run_dir_names_are_spelled_in_rundir_only() -> None:
    constants = [value for key, value in vars(rundir).items() if key.isupper() and key != "BEST_CHECKPOINT_GLOB"]
    names = {v for value in constants for v in (value.values() if isinstance(value, dict) else [value])}
    names = {name for name in names if isinstance(name, str)}
    assert {"metrics.json", "splits.csv", "predictions.csv", "checkpoints", ".hydra", "plots", "model.onnx"} <= names
    for path in PACKAGE.rglob("*.py"):
        if path.name == "rundir.py":
            continue
        spelled = {
            node.value
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names
        }
        # "plots" and "eval"/"predict"/"export" are also config keys and command names: only file names count;
        # torch.hub keeps its downloads in a checkpoints/ folder of its own (the weights' modules name it).
        spelled -= {"plots", "eval", "predict", "export"}
        if "hub.get_dir" in path.read_text():
            spelled -= {"checkpoints"}
        assert not spelled, f"{path.relative_to(REPO)} spells run-dir names {spelled}: take them from rundir.py"


def test_importing_transferlab_changes_nothing_until_prepare() -> None:
    """Every module imported in a fresh process: no resolver registered, no environment set, no warning filter;
    then startup.prepare() registers the resolvers."""
    script = """
import importlib, os, pkgutil, warnings
os.environ.pop("NO_ALBUMENTATIONS_UPDATE", None)
import transferlab
before = list(warnings.filters)
for module in pkgutil.walk_packages(transferlab.__path__, "transferlab."):
    importlib.import_module(module.name)
from omegaconf import OmegaConf
assert not OmegaConf.has_resolver("transferlab.beside_run"), "a resolver was registered on import"
assert "NO_ALBUMENTATIONS_UPDATE" not in os.environ, "the environment was changed on import"
added = [f for f in warnings.filters if f not in before and f[1] is not None and "eval mode" in f[1].pattern]
assert not added, added
from transferlab.startup import prepare
prepare()
assert OmegaConf.has_resolver("transferlab.beside_run") and os.environ["NO_ALBUMENTATIONS_UPDATE"] == "1"
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")

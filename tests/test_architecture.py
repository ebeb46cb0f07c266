"""The rules of the house (README, "How it fits together"), checked on the source: the packages depend one way
(base → runs → data → backbones → training → inference → reports → launch → commands), no module imports another
in a circle (lazy imports inside functions included), commands never import commands, the run directory's names are
spelled in ``runs/layout.py`` alone; and importing transferlab changes nothing in the process until an entry point
calls ``startup.prepare``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from transferlab.runs import layout as rundir

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "transferlab"
COMMANDS = PACKAGE / "commands"
SCRIPTS = {"train": "train", "eval": "eval", "predict": "predict", "export": "export", "probe": "probe"}
# Lowest first: a module may import its own package and the packages before it, never one after it. "base" is the
# modules directly in src/transferlab (checks, files, devices, nested, _lazy), which import only each other.
LAYERS = ("base", "runs", "data", "backbones", "training", "inference", "reports", "launch", "commands")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "top"  # transferlab/__init__.py: lazy names only (see test_the_top_package_imports_nothing)
    return parts[1] if len(parts) > 2 or f"{module}.__init__" in MODULES or parts[1] in LAYERS else "base"


def lazy_exports(module: str) -> dict[str, str]:
    """A package's ``_EXPORTS`` (public name → submodule, see ``transferlab._lazy``), read from its source."""
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_EXPORTS" for t in node.targets):
            return {k: v for k, v in ast.literal_eval(node.value).items()}
    return {}


def under_type_checking(tree: ast.AST) -> set[ast.AST]:
    """The import statements inside ``if TYPE_CHECKING:`` blocks: for annotations, never executed."""
    skipped: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            skipped.update(n for stmt in node.body for n in ast.walk(stmt))
    return skipped


def imported_modules(path: Path) -> set[str]:
    """Every module an import statement in ``path`` names (``from a import b`` counts a and a.b), including imports
    inside functions; not those under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text())
    skipped = under_type_checking(tree)
    names: set[str] = set()
    for node in ast.walk(tree):
        if node in skipped:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    """Module → the transferlab modules it imports; a name a package exports lazily counts as its submodule."""
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        targets = set()
        for name in imported_modules(path):
            if name in MODULES:
                targets.add(name)
                continue
            package, _, attribute = name.rpartition(".")
            if package in MODULES and attribute in lazy_exports(package):
                targets.add(f"{package}.{lazy_exports(package)[attribute]}")
        graph[module] = targets - {module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_subpackage_is_in_a_layer() -> None:
    packages = {p.parent.name for p in PACKAGE.rglob("__init__.py") if p.parent != PACKAGE}
    assert packages == set(LAYERS) - {"base"}, "a new package needs its place in LAYERS (and the README)"
    assert len(MODULES) > 50, "the walk found too few modules: it must recurse into every subpackage"


def test_packages_depend_one_way() -> None:
    wrong = []
    for module, targets in import_graph().items():
        here = layer_of(module)
        if here == "top":
            continue
        for target in targets:
            there = layer_of(target)
            if there == "top" or LAYERS.index(there) > LAYERS.index(here):
                wrong.append(f"{module} ({here}) imports {target} ({there})")
    assert not wrong, "imports against the direction " + " → ".join(LAYERS) + ":\n" + "\n".join(sorted(wrong))


def test_no_import_cycle() -> None:
    found = cycles(import_graph())
    assert not found, "modules importing each other in a circle: " + "; ".join(" ↔ ".join(c) for c in found)


def test_the_cycle_check_finds_a_cycle() -> None:
    """The check itself, on a made-up graph: a → b → c → a is found, the tail d → a is not part of it."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_top_package_imports_nothing() -> None:
    """``import transferlab`` stays light: its names are lazy."""
    assert import_graph()["transferlab"] <= {"transferlab._lazy"}


def test_a_command_imports_no_other_command() -> None:
    commands = sorted(p for p in COMMANDS.glob("*.py") if p.name != "__init__.py")
    assert {p.stem for p in commands} == set(SCRIPTS.values())
    for path in commands:
        others = {f"transferlab.commands.{p.stem}" for p in commands} - {f"transferlab.commands.{path.stem}"}
        assert not imported_modules(path) & others, f"{path.name} imports another command"


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_each_script_runs_its_own_command(script: str) -> None:
    commands = {m for m in imported_modules(REPO / f"{script}.py") if m.startswith("transferlab.commands.")}
    assert {m.split(".")[2] for m in commands} == {SCRIPTS[script]}


def test_run_dir_names_are_spelled_in_the_layout_only() -> None:
    constants = [value for key, value in vars(rundir).items() if key.isupper() and key != "BEST_CHECKPOINT_GLOB"]
    names = {v for value in constants for v in (value.values() if isinstance(value, dict) else [value])}
    names = {name for name in names if isinstance(name, str)}
    assert {"metrics.json", "splits.csv", "predictions.csv", "checkpoints", ".hydra", "plots", "model.onnx"} <= names
    home = Path(rundir.__file__).resolve()
    for path in PACKAGE.rglob("*.py"):
        if path.resolve() == home:
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
        assert not spelled, f"{path.relative_to(REPO)} spells run-dir names {spelled}: take them from runs/layout.py"


def test_importing_transferlab_changes_nothing_until_prepare() -> None:
    """Every module imported in a fresh process: no resolver registered, no environment set, no warning filter;
    then startup.prepare() registers the resolvers."""
    script = """
import importlib, os, pkgutil, warnings
os.environ.pop("NO_ALBUMENTATIONS_UPDATE", None)
import transferlab
before = list(warnings.filters)
for module in pkgutil.walk_packages(transferlab.__path__, "transferlab."):
    if not module.name.endswith("__main__"):  # a module's command line runs on import
        importlib.import_module(module.name)
from omegaconf import OmegaConf
assert not OmegaConf.has_resolver("transferlab.beside_run"), "a resolver was registered on import"
assert "NO_ALBUMENTATIONS_UPDATE" not in os.environ, "the environment was changed on import"
added = [f for f in warnings.filters if f not in before and f[1] is not None and "eval mode" in f[1].pattern]
assert not added, added
from transferlab.launch.startup import prepare
prepare()
assert OmegaConf.has_resolver("transferlab.beside_run") and os.environ["NO_ALBUMENTATIONS_UPDATE"] == "1"
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")

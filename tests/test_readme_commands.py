"""Every command in README.md's ```bash blocks runs as written, at tiny size on generated data (issue 11).

The test is a set of rules, so that a command added to the README is run without editing this file:

- :func:`readme_commands` reads the blocks: ``\\`` continuations joined, ``# comments`` dropped, ``VAR=value`` lines
  substituted into later ``$VAR`` uses, ``a && b`` split into two commands.
- ``SKIP`` names what cannot run here, with the reason; ``KINDS`` says what every other command is and what it must
  write. A command that matches neither fails, so a new kind of command forces a decision.
- ``PLACEHOLDERS`` maps the README's example paths to generated data, and its run and sweep dirs to one tiny sweep
  trained once (its job 0 is the run), on which the commands work in README order, as a reader's would.
- ``SHRINK`` appends the tiny-size overrides per kind (replacing a key the command sets itself); ``OUTPUT_DIRS``
  sends each run's folder into tmp when the command names none.
- ImageNet weights: :func:`offline_imagenet_weights` writes random stand-ins under torchvision's file names into
  ``~/.cache/torch/hub/checkpoints`` of a tmp ``HOME`` (the README's offline route) for every backbone a command
  names, so ``model.weights=imagenet`` loads them as it would the real ones.

The first README command of each script runs with its config's ``num_workers`` (``data.num_workers=auto`` for
train.py and probe.py), so that path is covered; later ones load in the main process (``NUM_WORKERS_OFF``), which
saves a few seconds of worker start-up each.
"""

from __future__ import annotations

import csv
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest
import torch
from helpers import REPO, STDERR_TAIL, TIMEOUT, command_config, run_process
from omegaconf import OmegaConf
from PIL import Image
from torchvision.models import get_model, get_model_weights

import transferlab.data.datamodule
import transferlab.devices
import transferlab.inference.image_files
from transferlab.commands.probe import linear_probe
from transferlab.data.demo import make_demo_dataset
from transferlab.launch.resolvers import eval_split
from transferlab.runs.layout import EXPORT_DIR, EXPORT_FILES, METRICS_FILE, REPORT_FILE, SUMMARY_FILE, run_dir_of

README = REPO / "README.md"
CONF_DIR = REPO / "conf"
# The classes of the generated labelled folder: demo classes, so that a checkpoint trained on the demo data (the
# README's default) evaluates it, as eval.py requires of a labelled folder.
DATA_CLASSES = ("circle", "star", "triangle")
IMAGES_PER_CLASS = 16  # 12 for training per class, 2 for val, 2 for test


# ---------------------------------------------------------------------------------------------------------------
# Reading the README


@dataclass(frozen=True)
class ReadmeCommand:
    line: int  # where the command starts in README.md
    text: str  # as written: continuations joined, comment dropped, variables substituted

    @property
    def tokens(self) -> list[str]:
        return shlex.split(self.text)


def strip_comment(line: str) -> str:
    """``line`` without a trailing ``# comment`` (a ``#`` at the start or after a blank, outside quotes)."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def readme_commands(path: Path = README) -> list[ReadmeCommand]:
    commands: list[ReadmeCommand] = []
    variables: dict[str, str] = {}
    in_bash, pending, start = False, "", 0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if raw.startswith("```"):
            in_bash = raw.strip() == "```bash"
            continue
        if not in_bash:
            continue
        if not pending:
            start = number
        line = raw.rstrip()
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        text = strip_comment(pending + line.strip())
        pending = ""
        if not text:
            continue
        assignment = re.fullmatch(r"([A-Za-z_]\w*)=(\S+)", text)
        if assignment:
            variables[assignment[1]] = assignment[2]
            continue
        text = re.sub(r"\$\{?([A-Za-z_]\w*)\}?", lambda m: variables.get(m[1], m[0]), text)
        text = re.sub(r'^eval "\$\((.*)\)"$', r"\1", text)  # the command whose output the shell evaluates
        commands += [ReadmeCommand(start, part.strip()) for part in text.split(" && ")]
    return commands


def override_key(arg: str) -> str | None:
    """The config key a Hydra command-line override sets (``+``/``++``/``~`` dropped), or None for a flag."""
    if "=" not in arg or arg.startswith("-"):
        return None
    return arg.split("=", 1)[0].lstrip("+~")


def overrides_of(args: list[str]) -> dict[str, str]:
    return {key: arg.split("=", 1)[1] for arg in args if (key := override_key(arg))}


# ---------------------------------------------------------------------------------------------------------------
# The rule tables

# Commands that cannot run on a CPU-only machine without a network or a cluster. First match wins.
SKIP: list[tuple[str, str]] = [
    (r"^uv run pytest\b", "the test suite itself, which runs this test"),
    (r"^srun\b", "needs a SLURM cluster (srun)"),
    (r"\bhydra/launcher=slurm\b", "submits jobs to a SLURM cluster"),
    (r"\btrainer=gpu\b", "needs a GPU"),
    (r"\bdata=flowers\b", "downloads the 218 MiB flower photos"),
    (r"^source\b", "changes the calling shell; the commands here run with the venv's python anyway"),
    (r"<TAB>", "interactive: tab completion in a shell"),
]


@dataclass(frozen=True)
class Prepared:
    """A README command made runnable here."""

    kind: str
    argv: list[str]  # what runs, from the repo root
    overrides: dict[str, str]  # key -> value of the final command line


def sweep_outputs(cmd: Prepared) -> list[Path]:
    sweep_dir = Path(cmd.overrides["hydra.sweep.dir"])
    return [sweep_dir / SUMMARY_FILE, sweep_dir / REPORT_FILE]


def run_outputs(cmd: Prepared) -> list[Path]:
    return [Path(cmd.overrides["hydra.run.dir"]) / METRICS_FILE]


def checkpoint_run_dir(cmd: Prepared) -> Path:
    run_dir = run_dir_of(Path(cmd.overrides["ckpt_path"]))
    assert run_dir is not None, f"{cmd.overrides['ckpt_path']} is not in a run's checkpoints/ folder"
    return run_dir


def eval_outputs(cmd: Prepared) -> list[Path]:
    split = eval_split(cmd.overrides.get("split"), cmd.overrides.get("data.root"))
    return [checkpoint_run_dir(cmd) / "eval" / split / "metrics.json"]


def predict_outputs(cmd: Prepared) -> list[Path]:
    return sorted(checkpoint_run_dir(cmd).glob("predict/*/predictions.csv"))[-1:] or [Path("<no predictions.csv>")]


def export_outputs(cmd: Prepared) -> list[Path]:
    formats = re.findall(r"\w+", cmd.overrides.get("format", "onnx"))
    return [checkpoint_run_dir(cmd) / EXPORT_DIR / EXPORT_FILES[name] for name in formats]


def report_outputs(cmd: Prepared) -> list[Path]:
    return [Path(cmd.argv[3]) / REPORT_FILE]


def summary_outputs(cmd: Prepared) -> list[Path]:
    return [Path(cmd.argv[3]) / "summary.csv"]


def no_outputs(cmd: Prepared) -> list[Path]:
    return []


# What each command is (first match wins) and the files it must write.
KINDS: list[tuple[str, str, Callable[[Prepared], list[Path]]]] = [
    (r"^uv run train\.py\b.* (-m|--multirun|hparams_search=\S+)( |$)", "train -m", sweep_outputs),
    (r"^uv run train\.py\b", "train", run_outputs),
    (r"^uv run eval\.py\b", "eval", eval_outputs),
    (r"^uv run predict\.py\b", "predict", predict_outputs),
    (r"^uv run export\.py\b", "export", export_outputs),
    (r"^uv run probe\.py\b", "probe", run_outputs),
    (r"^(uv run )?python -m transferlab\.reports\.sweep_report\b", "report", report_outputs),
    (r"^(uv run )?python -m transferlab\.reports\.sweep_summary\b", "summary", summary_outputs),
    (r"^(uv run )?python -m transferlab\.backbones\b", "backbones", no_outputs),
    (r"^(uv run )?python train\.py -sc install=", "completion", no_outputs),
    (r"^uv run ruff\b", "lint", no_outputs),
]
MULTIRUN_KINDS = {"train -m"}


def literal_paths(*paths: str) -> str:
    """A pattern for any of `paths` as a whole path: not inside a longer one."""
    alternatives = "|".join(re.escape(p) for p in sorted(paths, key=len, reverse=True))
    return rf"(?<![\w/.-])(?:{alternatives})(?![\w/.-])"


# The README's example paths -> attributes of `Resources`. First match wins.
PLACEHOLDERS: list[tuple[str, str]] = [
    (r"outputs/multirun/\d{4}-\d\d-\d\d/\d\d-\d\d-\d\d", "sweep_dir"),
    (r"<sweep_dir>", "sweep_dir"),
    (r"outputs/\d{4}-\d\d-\d\d/\d\d-\d\d-\d\d", "run_dir"),
    (r"best-epoch\d+\.ckpt", "best_ckpt_name"),
    (r"(?<![\w/.-])outputs/", "outputs_dir"),  # any other run dir the README names, e.g. outputs/my-run
    (r"sqlite:///optuna\.db", "optuna_storage"),
    (literal_paths("/path/to/photos"), "photos"),
    (literal_paths("/path/to/state_dict.pth", "/path/to/weights.pth"), "weights_file"),
    (literal_paths("/data/dogs_vs_cats"), "split_folders"),
    (literal_paths("/data/kaggle/train_labels.csv"), "labels_file"),
    (
        literal_paths("/path", "/path/to/root", "/path/to/images", "/my/images", "/new/labelled/images"),
        "data_root",
    ),
]


def always(overrides: dict[str, str]) -> bool:
    return True


def uses_demo_data(overrides: dict[str, str]) -> bool:
    return overrides.get("data", "demo") == "demo" and not overrides.keys() & {"data.root", "data.labels_file"}


def sets(key: str) -> Callable[[dict[str, str]], bool]:
    return lambda overrides: key in overrides


# Tiny size: (kinds, condition on the command's overrides, overrides to add). Added in this order; a key the command
# sets itself, or that an earlier row added, is replaced.
SHRINK: list[tuple[set[str], Callable[[dict[str, str]], bool], list[str]]] = [
    (
        {"train", "train -m"},
        always,
        [
            "trainer.max_epochs=1",
            "++trainer.limit_train_batches=2",
            "++trainer.enable_model_summary=false",
            "data.image_size=32",
            "data.batch_size=8",
            "plots.enabled=false",
        ],
    ),
    ({"train", "train -m", "probe"}, uses_demo_data, ["data.demo.images_per_class=12", "data.demo.image_size=32"]),
    # A command that sets the epochs itself extends a finished run: one epoch more than the shared run's.
    ({"train"}, sets("trainer.max_epochs"), ["trainer.max_epochs=2"]),
    ({"train -m"}, sets("hparams_search"), ["hydra.sweeper.n_trials=1"]),
    ({"train -m"}, sets("data.fold"), ["data.fold=0"]),  # one fold of a k-fold sweep
    # The finder suggests a rate from 12 steps or more, all within the one epoch: 18 batches of 2 images.
    (
        {"train", "train -m"},
        sets("tune.lr_find"),
        ["tune.num_training=16", "data.batch_size=2", "++trainer.limit_train_batches=1.0"],
    ),
    (
        {"probe"},
        always,
        ["data.image_size=32", "data.batch_size=8", "probe.weight_decays=[0.01,1.0]", "probe.max_iter=20"],
    ),
]

# Loader workers cost about a second of CPU each to start here. The first README command of each script keeps its
# config's default (data.num_workers=auto for train.py and probe.py: that path is covered); later ones load in the
# main process.
NUM_WORKERS_OFF = {"train": "data.num_workers=0", "train -m": "data.num_workers=0", "probe": "data.num_workers=0"}

# Where a run writes, when the command does not say: a fresh folder in the test's tmp_path.
OUTPUT_DIRS = {"train": "hydra.run.dir", "probe": "hydra.run.dir", "train -m": "hydra.sweep.dir"}


def skip_reason(command: ReadmeCommand) -> str | None:
    return next((reason for pattern, reason in SKIP if re.search(pattern, command.text)), None)


def kind_of(command: ReadmeCommand) -> str | None:
    """The kind of a command that is not skipped; None where no rule matches."""
    return next((kind for pattern, kind, _ in KINDS if re.search(pattern, command.text)), None)


def without_rule(command: ReadmeCommand) -> str:
    return (
        f"README.md:{command.line}: `{command.text}` matches no rule of {Path(__file__).name}: add it to KINDS "
        "(with its expected outputs) or to SKIP (with the reason it cannot run here)"
    )


def shrink(kind: str, args: list[str], tmp_path: Path, *, default_workers: bool) -> list[str]:
    """`args` with the tiny-size overrides of `kind`; `default_workers`: leave the loaders' num_workers alone."""
    present = overrides_of(args)
    extra = [arg for kinds, applies, overrides in SHRINK if kind in kinds and applies(present) for arg in overrides]
    if not default_workers and kind in NUM_WORKERS_OFF:
        extra.append(NUM_WORKERS_OFF[kind])
    key = OUTPUT_DIRS.get(kind)
    if key and key not in present:
        extra.append(f"{key}={tmp_path / key.rsplit('.', 1)[0].replace('.', '-')}")
    last = {override_key(arg): arg for arg in extra}  # a later row wins
    return [arg for arg in args if override_key(arg) not in last] + list(last.values())


def executable(tokens: list[str]) -> list[str]:
    """``uv run X.py`` / ``uv run python`` / ``python`` as this venv runs them; ``uv run tool`` as the venv's tool."""
    if tokens[:2] == ["uv", "run"]:
        tokens = tokens[2:]
        if tokens[0].endswith(".py"):
            return [sys.executable, *tokens]
    if tokens[0] == "python":
        return [sys.executable, *tokens[1:]]
    return [str(Path(sys.executable).parent / tokens[0]), *tokens[1:]]


# ---------------------------------------------------------------------------------------------------------------
# Data, weights and a trained run


def make_labelled_folder(root: Path, drawn: Path) -> Path:
    """``root/<class>/…``: demo shapes at 40 px, as PNG and JPEG, with odd names and a hidden file per class."""
    names = ("{cls}_{i:02d}.png", "IMG {i:03d}.JPG", "ünïcode-{i}.jpeg", "{cls}.{i}.Png")
    for cls in DATA_CLASSES:
        (root / cls).mkdir(parents=True)
        (root / cls / ".DS_Store").write_bytes(b"\0not an image")
        for i, source in enumerate(sorted((drawn / cls).glob("*.png"))):
            name = names[i % len(names)].format(cls=cls, i=i)
            Image.open(source).convert("RGB").save(root / cls / name, format="PNG" if "png" in name.lower() else "JPEG")
    return root


def make_split_folders(root: Path, labelled: Path) -> Path:
    """``root/train/<class>/…`` and ``root/validation/<class>/…`` (the Keras layout), from the labelled folder."""
    for cls in DATA_CLASSES:
        images = sorted(path for path in (labelled / cls).iterdir() if not path.name.startswith("."))
        for split, part in (("train", images[:12]), ("validation", images[12:])):
            (root / split / cls).mkdir(parents=True)
            for path in part:
                shutil.copy(path, root / split / cls / path.name)
    return root


def make_labels_file(path: Path, labelled: Path) -> Path:
    """A Kaggle-style label file: ``path,label`` rows for a flat ``train/`` folder beside it."""
    (path.parent / "train").mkdir(parents=True)
    rows = [("path", "label")]
    for cls in DATA_CLASSES:
        images = sorted(image for image in (labelled / cls).iterdir() if not image.name.startswith("."))
        for i, image in enumerate(images):
            shutil.copy(image, path.parent / "train" / f"{cls}.{i}{image.suffix}")
            rows.append((f"train/{cls}.{i}{image.suffix}", cls))
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return path


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """HOME, the datasets, a folder of photos to classify and a weights file, shared by the module."""
    base = tmp_path_factory.mktemp("readme")
    drawn = make_demo_dataset(base / "drawn", images_per_class=IMAGES_PER_CLASS, image_size=40)
    make_labelled_folder(base / "data", drawn)
    make_split_folders(base / "split_folders", base / "data")
    make_labels_file(base / "kaggle" / "train_labels.csv", base / "data")
    photos = base / "photos"
    (photos / "holiday").mkdir(parents=True)
    for i, source in enumerate(sorted((base / "data" / "star").glob("*"))[:4]):
        shutil.copy(source, photos / ("holiday" if i % 2 else "") / source.name)
    (photos / "truncated.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")  # gets an error row, not a crash
    torch.manual_seed(0)
    torch.save(get_model("resnet18").state_dict(), base / "resnet18-random.pth")
    (base / "home").mkdir()
    return base


@pytest.fixture(scope="module")
def env(workspace: Path) -> dict[str, str]:
    """A fresh user: HOME in tmp, so the demo data and the torch hub cache go to its ~/.cache, as the README says.

    One OpenMP thread: on a busy machine torch's spinning intra-op threads made a tiny run 3× slower (95 s against
    31 s for the lr_find command on 2 shared cores); these batches are too small to gain from a second thread.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("TRANSFERLAB_CACHE", "TORCH_HOME", "XDG_CACHE_HOME")}
    return {**env, "HOME": str(workspace / "home"), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def offline_imagenet_weights(overrides: dict[str, str], home: Path) -> None:
    """Random stand-ins for the ImageNet weights of every backbone the command names, where torchvision looks.

    The one rule for pretrained weights: torchvision loads a file already in ``$TORCH_HOME/hub/checkpoints``
    without downloading (or hash-checking) it, so ``model.weights=imagenet`` works as written, in sweeps over
    several models too. A backbone without torchvision weights (timm's come from the Hugging Face cache) needs a
    rule of its own here.
    """
    models = overrides.get("model", "resnet18").split(",")
    backbones = {OmegaConf.load(CONF_DIR / "model" / f"{name}.yaml").get("backbone", name) for name in models}
    backbones |= set(overrides.get("model.backbone", "").split(",")) - {""}
    checkpoints = home / ".cache" / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    for backbone in sorted(backbones):
        if backbone.startswith("timm/"):
            pytest.fail(f"no offline stand-in for timm weights yet ({backbone}): add one to offline_imagenet_weights")
        path = checkpoints / Path(urlparse(get_model_weights(backbone).DEFAULT.url).path).name
        if not path.exists():
            torch.manual_seed(0)
            torch.save(get_model(backbone).state_dict(), path)


def run_command(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Runs `argv` from the repo root (see helpers.run_process)."""
    return run_process(argv, env=env, cwd=REPO, timeout=TIMEOUT)


def prepare(command: ReadmeCommand, kind: str, resources: Resources) -> Prepared:
    text = substitute(command.text, resources)
    tokens = executable(shlex.split(text))
    program, args = (tokens[:2], tokens[2:]) if tokens[1].endswith(".py") else (tokens, [])
    args = shrink(kind, args, resources.tmp_path, default_workers=command in DEFAULT_WORKERS)
    prepared = Prepared(kind, [*program, *args], overrides_of(args))
    offline_imagenet_weights(prepared.overrides, resources.home)
    return prepared


def substitute(text: str, resources: Resources) -> str:
    pattern = "|".join(f"(?P<p{i}>{regex})" for i, (regex, _) in enumerate(PLACEHOLDERS))
    return re.sub(pattern, lambda m: str(getattr(resources, PLACEHOLDERS[int(m.lastgroup[1:])][1])), text)


def check_sweep(sweep_dir: Path) -> None:
    """A multirun exits 0 when jobs fail (they write error.txt): every job of the summary must be ok."""
    with (sweep_dir / SUMMARY_FILE).open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows, f"{sweep_dir / 'summary.csv'} has no jobs"
    failed = [f"job {row['job']}: {row['error']}" for row in rows if row["status"] != "ok"]
    assert not failed, f"failed jobs in {sweep_dir}:\n" + "\n".join(failed)


def assert_ran(command: str, prepared: Prepared, result: subprocess.CompletedProcess, started: float) -> None:
    code = result.returncode  # a plain int, so that a failure shows the stderr tail, not the whole output
    assert code == 0, (
        f"`{command}` exited with {code}; ran `{shlex.join(prepared.argv)}`\nstdout tail:\n"
        f"{result.stdout[-STDERR_TAIL:]}\nstderr tail:\n{result.stderr[-STDERR_TAIL:]}"
    )
    # ckpt_path=auto skips a run that has finished (README, Resume): its outputs may be older than the command.
    may_skip = prepared.overrides.get("ckpt_path") == "auto"
    for path in KIND_OUTPUTS[prepared.kind](prepared):
        assert path.is_file() and (may_skip or path.stat().st_mtime >= started), f"`{command}` did not write {path}"
    if prepared.kind in MULTIRUN_KINDS:
        check_sweep(Path(prepared.overrides["hydra.sweep.dir"]))


KIND_OUTPUTS = {kind: outputs for _, kind, outputs in KINDS}

# The shared sweep: two tiny jobs on the demo data, shrunk by the same rules. Job 0 is the trained run that the
# README's run dirs and checkpoints stand for, the sweep its sweep dirs.
SHARED_SWEEP = ReadmeCommand(0, "uv run train.py -m strategy=scratch,finetune")


@pytest.fixture(scope="module")
def shared_sweep(workspace: Path, env: dict[str, str]) -> Path:
    resources = Resources(workspace / "shared", workspace, lambda: pytest.fail("the shared sweep needs no run"))
    prepared = prepare(SHARED_SWEEP, "train -m", resources)
    started = time.time()
    assert_ran(SHARED_SWEEP.text, prepared, run_command(prepared.argv, env), started)
    return Path(prepared.overrides["hydra.sweep.dir"])


class Resources:
    """What the README's placeholders stand for in one command; the shared sweep is trained on first use."""

    def __init__(self, tmp_path: Path, workspace: Path, sweep: Callable[[], Path]) -> None:
        self.tmp_path, self.workspace, self._sweep = tmp_path, workspace, sweep

    @property
    def home(self) -> Path:
        return self.workspace / "home"

    @property
    def sweep_dir(self) -> Path:
        return self._sweep()

    @property
    def run_dir(self) -> Path:
        # The run itself, not a copy: the README's commands all work on one run dir, and a resume restores the
        # best-checkpoint state only in the folder that wrote it (Lightning drops it when the dirpath changed).
        return self._sweep() / "0"

    @property
    def best_ckpt_name(self) -> str:
        (best,) = (self._sweep() / "0" / "checkpoints").glob("best-*.ckpt")
        return best.name

    @property
    def outputs_dir(self) -> str:
        return f"{self.tmp_path / 'outputs'}/"

    @property
    def optuna_storage(self) -> str:
        return f"sqlite:///{self.tmp_path / 'optuna.db'}"

    @property
    def data_root(self) -> Path:
        return self.workspace / "data"

    @property
    def split_folders(self) -> Path:
        return self.workspace / "split_folders"

    @property
    def labels_file(self) -> Path:
        return self.workspace / "kaggle" / "train_labels.csv"

    @property
    def photos(self) -> Path:
        return self.workspace / "photos"

    @property
    def weights_file(self) -> Path:
        return self.workspace / "resnet18-random.pth"


# ---------------------------------------------------------------------------------------------------------------
# The tests

COMMANDS = readme_commands()


def first_of_each_script(commands: list[ReadmeCommand]) -> set[ReadmeCommand]:
    firsts: dict[str, ReadmeCommand] = {}
    for command in commands:
        kind = None if skip_reason(command) else kind_of(command)
        if kind:
            firsts.setdefault(kind.split()[0], command)
    return set(firsts.values())


DEFAULT_WORKERS = first_of_each_script(COMMANDS)


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS, ids=[f"README:{c.line}:{c.text}" for c in COMMANDS])
def test_readme_command_runs_as_written(
    command: ReadmeCommand, request: pytest.FixtureRequest, workspace: Path, env: dict[str, str], tmp_path: Path
) -> None:
    reason = skip_reason(command)
    if reason:
        pytest.skip(reason)
    kind = kind_of(command)
    if kind is None:
        pytest.fail(without_rule(command))
    resources = Resources(tmp_path, workspace, lambda: request.getfixturevalue("shared_sweep"))
    prepared = prepare(command, kind, resources)
    started = time.time()
    assert_ran(command.text, prepared, run_command(prepared.argv, env), started)


def test_readme_commands_are_found_and_every_one_has_a_rule() -> None:
    texts = [c.text for c in COMMANDS]
    assert any(t.startswith("uv run train.py") for t in texts), texts
    assert not [t for t in texts if re.search(r"\\$|#|\$\{?\w", t)], texts  # continuations, comments, variables
    missing = [without_rule(c) for c in COMMANDS if not skip_reason(c) and not kind_of(c)]
    assert not missing, "\n".join(missing)


def test_every_script_runs_once_with_its_default_num_workers() -> None:
    """The first README command of each script keeps its config's num_workers (auto for train.py and probe.py)."""
    scripts = {}
    for command in DEFAULT_WORKERS:
        kind = kind_of(command)
        scripts[kind.split()[0]] = command
        args = shrink(kind, command.tokens[3:], Path("/tmp"), default_workers=True)
        assert not overrides_of(args).keys() & {"data.num_workers", "num_workers"}, command
    assert {"train", "eval", "predict", "export", "probe"} <= scripts.keys(), scripts


def test_probe_resolves_num_workers_auto_as_the_datamodule_does(
    monkeypatch: pytest.MonkeyPatch, shapes_root: Path, weights_file: Path, tmp_path: Path
) -> None:
    # Regression: `probe.py data=folder data.root=…` passed data.num_workers="auto" on to its DataLoader.
    monkeypatch.setattr(transferlab.devices, "default_num_workers", lambda: 1)
    workers: list[int] = []
    real_loader = transferlab.inference.image_files.DataLoader

    def recording_loader(*args, **kwargs):
        workers.append(kwargs["num_workers"])
        return real_loader(*args, **kwargs)

    monkeypatch.setattr(transferlab.inference.image_files, "DataLoader", recording_loader)
    cfg = command_config(
        "probe",
        tmp_path,
        "data=folder",
        f"data.root={shapes_root}",
        "data.image_size=32",
        "data.val_fraction=0.2",
        "data.test_fraction=0.2",
        f"model.weights={weights_file}",
        "probe.weight_decays=[0.01]",
        "probe.max_iter=5",
    )
    assert cfg.data.num_workers == "auto"
    linear_probe(cfg)
    assert workers == [1, 1, 1]  # train, val, test features, each with the datamodule's resolved count

"""Re-launching into a run dir: a resume runs with the run's own saved config, never overwriting it.

``uv run train.py hydra.run.dir=<run> ckpt_path=auto`` (or ``ckpt_path=<run>/checkpoints/last.ckpt``) needs no
other override: the config is the run's ``.hydra/config.yaml``, with this launch's overrides applied only where they
cannot change what is trained (:data:`HARMLESS`: loader workers, devices, progress display, loggers, plots, and
``trainer.max_epochs`` to train longer, see ``schedules.ScheduleHorizon``). Any other override that differs from the
saved config (data, split, model, strategy, optimizer, …) is refused, naming each key with both values, before
anything in the run dir is written.

The original ``.hydra/`` is kept: Hydra writes it only into a run dir that has none (``hydra.output_subdir`` is
``${transferlab.hydra_subdir:…}``), and each resumed launch writes its own config and overrides beside it, in
``.hydra/resume-<n>/`` once the command has accepted it (:meth:`Launch.record`). A launch that is refused (here,
or by the command's own checks: no disk space for its checkpoints) or skipped (``ckpt_path=auto`` of a finished
run) writes nothing.
Light on purpose: it runs before torch is imported, so a skipped or refused launch answers at once.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict

from transferlab.launch.cli import ConfigError
from transferlab.launch.resolvers import launched_fresh
from transferlab.nested import flatten
from transferlab.runs.layout import (
    CONFIG_FILE,
    HYDRA_DIR,
    LAST_CHECKPOINT,
    METRICS_FILE,
    RESUME_PREFIX,
    read_config,
    read_metrics,
    run_dir_of,
)

log = logging.getLogger(__name__)

# Keys (and everything below them) that a resumed launch may change: how the run is executed and shown, never what
# it trains. trainer.max_epochs extends (or shortens) the run; the schedule follows it (schedules.ScheduleHorizon).
HARMLESS = (
    "ckpt_path",
    "paths",
    "data.num_workers",
    "trainer.accelerator",
    "trainer.devices",
    "trainer.num_nodes",
    "trainer.strategy",
    "trainer.max_epochs",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.log_every_n_steps",
    "callbacks",
    "logger",
    "plots",
    "progress",
)
UNSET = "<unset>"  # shown for a key one side lacks


@dataclass
class Launch:
    cfg: DictConfig  # the config to run
    skip: bool = False  # ckpt_path=auto of a run that has finished: nothing to do
    source: Path | None = None  # the run dir whose saved config `cfg` continues
    metrics: dict[str, Any] | None = None  # the finished run's metrics.json, when skipped
    record_folder: Path | None = None  # where `record` saves this launch's config and overrides
    overrides: tuple[str, ...] = ()

    def record(self) -> None:
        """Saves this launch's config into its run dir: called by the command once it has accepted the launch
        (every check passed), so that a launch refused later (no disk space, say) still writes nothing."""
        if self.record_folder is not None:
            save_launch(self.record_folder, self.cfg, list(self.overrides))
            self.record_folder = None


def prepare_launch(cfg: DictConfig) -> Launch:
    """The config a ``train.py`` launch runs with, inside Hydra (``HydraConfig`` is set); see the module doc.

    Raises:
        ConfigError: an override conflicts with the run's saved config, or a new run would overwrite a trained one.
    """
    hydra_cfg = HydraConfig.get()
    output_dir = Path(hydra_cfg.runtime.output_dir)
    overrides = list(hydra_cfg.overrides.task)
    fresh = launched_fresh(str(output_dir))  # Hydra wrote .hydra/ for this launch: the run dir had no config
    source = source_run(cfg.ckpt_path, output_dir, fresh=fresh)
    if source is None:
        if not fresh:  # a new run (no ckpt_path) into a run dir that holds one
            if (output_dir / LAST_CHECKPOINT).is_file() or (output_dir / METRICS_FILE).is_file():
                raise ConfigError(
                    f"hydra.run.dir={output_dir} already holds a run (checkpoints, metrics.json): resume it with "
                    "ckpt_path=auto, or pick a new hydra.run.dir (or delete that folder) to start over"
                )
            save_launch(output_dir / HYDRA_DIR, cfg, overrides)  # it never trained: this launch replaces it
        return Launch(cfg)

    saved = read_config(source)
    merged = merge_overrides(saved, cfg, overrides, run_dir=source)
    with open_dict(merged):
        merged.ckpt_path = cfg.ckpt_path
    OmegaConf.set_struct(merged, True)
    if finished(merged, output_dir):
        log.info("%s exists: this run already finished, skipping it (ckpt_path=auto)", output_dir / METRICS_FILE)
        metrics = read_metrics(output_dir)
        return Launch(merged, skip=True, source=source, metrics=metrics)
    if source == output_dir:
        folder = output_dir / HYDRA_DIR / f"{RESUME_PREFIX}{count_resumes(output_dir) + 1}"
        log.info("Resuming %s with its saved config; this launch's config goes to %s", source, folder)
    else:  # a new run dir continuing another run's checkpoint: its .hydra/ (just written by Hydra) is its own
        folder = output_dir / HYDRA_DIR
        log.info("Continuing %s with its saved config in %s", source, output_dir)
    return Launch(merged, source=source, record_folder=folder, overrides=tuple(overrides))


def source_run(ckpt_path: Any, output_dir: Path, *, fresh: bool) -> Path | None:
    """The run dir whose saved config a launch continues: its own for ``auto`` (when it has one), the checkpoint's
    run for a ``ckpt_path`` inside a run's ``checkpoints/``; None for a new run."""
    if ckpt_path is None:
        return None
    if ckpt_path == "auto":
        return None if fresh else output_dir
    run_dir = run_dir_of(ckpt_path)
    if run_dir is None or not (run_dir / CONFIG_FILE).is_file():
        return None
    if run_dir.resolve() == output_dir.resolve():
        return None if fresh else output_dir
    return run_dir


def merge_overrides(saved: DictConfig, cfg: DictConfig, overrides: list[str], *, run_dir: Path) -> DictConfig:
    """``saved`` with the values of `cfg` (this launch's composed config) at the keys `overrides` set, where
    harmless; raises :class:`ConfigError` naming every other key whose value would change."""
    merged = OmegaConf.create(OmegaConf.to_container(saved, resolve=False))
    conflicts = []
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.key_or_group.replace("/", ".")
        if override.package not in (None, ""):
            key = "" if override.package == "_global_" else override.package
        if override.is_delete() or not key or has_key(cfg, key) or has_key(saved, key):
            for leaf, (before, after) in leaf_differences(saved, cfg, key).items():
                if harmless(leaf):
                    set_leaf(merged, leaf, after)
                else:
                    conflicts.append(f"  {leaf}: {shown(before)} in the run, {shown(after)} in this launch")
        else:  # a group whose options are `# @package _global_` (experiment=…): compare the option chosen
            group = override.key_or_group
            before, after = saved_choice(run_dir, group), override.value()
            if before != after:
                conflicts.append(f"  {group}: {shown(before)} in the run, {shown(after)} in this launch")
    if conflicts:
        raise ConfigError(
            f"{run_dir} is resumed with its saved config ({run_dir / CONFIG_FILE}), and these overrides would change "
            "what it trains:\n" + "\n".join(sorted(set(conflicts))) + "\nLeave them out to resume the run as it was, "
            "or start a new run (a new hydra.run.dir; model.weights=<checkpoint> to start from its weights). "
            f"Allowed on resume: {', '.join(key for key in HARMLESS if key != 'ckpt_path')}."
        )
    return merged


def saved_choice(run_dir: Path, group: str) -> Any:
    """The option of config group `group` that the run was launched with (Hydra's ``runtime.choices``)."""
    hydra_yaml = run_dir / HYDRA_DIR / "hydra.yaml"
    if not hydra_yaml.is_file():
        return UNSET
    choices = OmegaConf.select(OmegaConf.load(hydra_yaml), "hydra.runtime.choices", default=None) or {}
    return choices.get(group, UNSET)


def leaf_differences(saved: DictConfig, cfg: DictConfig, key: str) -> dict[str, tuple[Any, Any]]:
    """``{dotted leaf key: (saved value, cfg value)}`` under `key` (all when empty) where the two differ; values
    unresolved, :data:`UNSET` where a side lacks the key."""
    before, after = flat(saved, key), flat(cfg, key)
    return {
        leaf: (before.get(leaf, UNSET), after.get(leaf, UNSET))
        for leaf in sorted(before.keys() | after.keys())
        if before.get(leaf, UNSET) != after.get(leaf, UNSET) and leaf not in ("ckpt_path", "paths.output_dir")
    }


def flat(cfg: DictConfig, key: str) -> dict[str, Any]:
    if key and not has_key(cfg, key):
        return {}
    node = cfg if not key else OmegaConf.select(cfg, key, throw_on_resolution_failure=False)
    value = OmegaConf.to_container(node, resolve=False) if OmegaConf.is_config(node) else node
    if not OmegaConf.is_config(node):  # a leaf: select resolved it; its unresolved text is what is compared
        parent, _, name = key.rpartition(".")
        holder = OmegaConf.select(cfg, parent) if parent else cfg
        value = OmegaConf.to_container(holder, resolve=False)[name]
    return flatten(value, key)


def has_key(cfg: DictConfig, key: str) -> bool:
    parent, _, name = key.rpartition(".")
    node = OmegaConf.select(cfg, parent, default=None, throw_on_resolution_failure=False) if parent else cfg
    return OmegaConf.is_dict(node) and name in node


def harmless(key: str) -> bool:
    return any(key == allowed or key.startswith(allowed + ".") for allowed in HARMLESS)


def shown(value: Any) -> str:
    return value if value is UNSET else json.dumps(value) if not isinstance(value, str) else value


def set_leaf(cfg: DictConfig, key: str, value: Any) -> None:
    """Sets ``cfg[key]`` to `value`, or deletes it for :data:`UNSET`."""
    if value is UNSET:
        parent, _, name = key.rpartition(".")
        node = OmegaConf.select(cfg, parent) if parent else cfg
        if OmegaConf.is_dict(node) and name in node:
            del node[name]
        return
    OmegaConf.update(cfg, key, value, merge=False, force_add=True)


def finished(cfg: DictConfig, output_dir: Path) -> bool:
    """``ckpt_path=auto`` of a run whose ``metrics.json`` exists, unless ``trainer.max_epochs`` now asks for more
    epochs than it was run for (then it resumes to train longer)."""
    if cfg.get("ckpt_path") != "auto":
        return False
    try:
        metrics = read_metrics(output_dir)
    except ValueError:  # unreadable: not finished, so it resumes and writes a new one
        return False
    if metrics is None:
        return False
    planned = metrics.get("max_epochs")
    config = read_config(output_dir) if planned is None else None
    if config is not None:
        planned = OmegaConf.select(config, "trainer.max_epochs")
    wanted = OmegaConf.select(cfg, "trainer.max_epochs", default=None)
    return planned is None or wanted is None or wanted == -1 or int(wanted) <= int(planned)


def count_resumes(output_dir: Path) -> int:
    folder = output_dir / HYDRA_DIR
    return sum(1 for path in folder.glob(f"{RESUME_PREFIX}*") if path.name[len(RESUME_PREFIX) :].isdigit())


def save_launch(folder: Path, cfg: DictConfig, overrides: list[str]) -> None:
    """What Hydra saves of a launch: ``config.yaml`` (the task config, unresolved), ``overrides.yaml``."""
    folder.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, folder / "config.yaml")
    OmegaConf.save(OmegaConf.create(overrides), folder / "overrides.yaml")

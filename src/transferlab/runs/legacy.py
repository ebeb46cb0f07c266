"""Owns the module paths that older run dirs still name: saved configs (``.hydra/config.yaml``) and checkpoint
hyperparameters hold ``_target_`` paths, and the modules moved into packages (issue 19). :func:`upgrade_targets`
rewrites them to today's paths wherever a saved config or a checkpoint's scheduler is read, so that a run dir
written before the move resumes, evaluates, predicts and exports as it did. ``transferlab.data.FolderDataModule``
needs no entry: the ``data`` package exports it under that name.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

# Old module → today's, for every module a saved config's _target_ (or a report's "python -m …" line) could name.
RENAMED_MODULES = {
    "transferlab.schedules": "transferlab.training.schedules",
    "transferlab.sweep": "transferlab.reports.sweep_summary",
    "transferlab.report": "transferlab.reports.sweep_report",
}


def upgraded_target(target: str) -> str:
    for old, new in RENAMED_MODULES.items():
        if target.startswith(f"{old}."):
            return new + target.removeprefix(old)
    return target


def upgrade_targets(node: Any) -> Any:
    """``node`` (a config, dict or list, changed in place and returned) with every ``_target_`` upgraded."""
    if isinstance(node, DictConfig | dict):
        for key in list(node.keys()):
            if key == "_target_" and isinstance(node[key], str):
                node[key] = upgraded_target(node[key])
            elif OmegaConf.is_config(node) and OmegaConf.is_interpolation(node, key):
                continue  # resolved later, to whatever it names
            else:
                upgrade_targets(node[key])
    elif isinstance(node, ListConfig | list):
        for item in node:
            upgrade_targets(item)
    return node

"""One tiny trained run shared by the eval, predict, plots, report and export tests (training it once saves time)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import CONF_DIR, make_config
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf, open_dict

from transferlab.commands.train import run

_RUNS: dict[Path, dict[str, Any]] = {}


def train_once(run_dir: Path, data_root: Path, *overrides: str) -> dict[str, Any]:
    """A 1-epoch scratch run into `run_dir` (once per session), with the `.hydra/config.yaml` Hydra would save."""
    if run_dir not in _RUNS:
        cfg = make_config(run_dir, data_root, "trainer.max_epochs=1", "plots.enabled=true", *overrides)
        _RUNS[run_dir] = run(cfg)
        (run_dir / ".hydra").mkdir(exist_ok=True)
        OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")  # as a train.py run leaves it: unresolved
    return _RUNS[run_dir]


def command_config(name: str, output_dir: Path, *overrides: str) -> DictConfig:
    """conf/<name>.yaml composed as ``python <name>.py <overrides>`` would, writing into `output_dir`."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(name, overrides=list(overrides))
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg

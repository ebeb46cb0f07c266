"""Every config option composes, validates and instantiates: a typo in conf/ fails here, not mid-run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import CONF_DIR
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from transferlab.launch.config_checks import validate

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiments_compose_and_validate(experiment: str) -> None:
    # As a user composes it: no test-size overrides, which would replace the experiment's max_epochs.
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={experiment}"])
    strategy = validate(cfg)
    assert strategy.name in {"feature_extraction", "finetune"}
    assert cfg.trainer.max_epochs > strategy.freeze_epochs


def test_classic_recipes_say_what_they_do(config) -> None:
    keras = config("experiment=keras_frozen_dense_head")
    assert keras.strategy.name == "feature_extraction" and keras.model.head.hidden_dim == 256
    assert keras.model.head.dropout == 0.5 and keras.optimizer._target_ == "torch.optim.RMSprop"
    first_layers = config("experiment=freeze_first_layers")
    assert first_layers.strategy.unfreeze_from == "layer3" and first_layers.strategy.backbone_lr_scale == 1.0
    two_stage = config("experiment=two_stage")
    assert two_stage.strategy.freeze_epochs == 5 and two_stage.strategy.backbone_lr_scale == 0.1


@pytest.mark.parametrize("optimizer", options("optimizer"))
def test_optimizers_instantiate_on_param_groups(config, optimizer: str) -> None:
    cfg = config(f"optimizer={optimizer}")
    params = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.5}]
    built = instantiate(cfg.optimizer)(params)
    assert isinstance(built, torch.optim.Optimizer)
    assert built.param_groups[0]["lr"] == 0.5  # the group's rate wins over the config's default


@pytest.mark.parametrize("scheduler", [s for s in options("scheduler") if s != "none"])
def test_schedulers_instantiate(config, scheduler: str) -> None:
    cfg = config(f"scheduler={scheduler}")
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    built = instantiate(cfg.scheduler)(optimizer, total_steps=10, steps_per_epoch=5)
    assert built["interval"] in {"step", "epoch"}


def test_scheduler_none_keeps_rates_constant(config, shapes_root: Path) -> None:
    from transferlab.data.datamodule import FolderDataModule
    from transferlab.launch.build import Settings, build_model

    cfg = config("scheduler=none")
    datamodule = FolderDataModule(str(shapes_root), num_workers=0, augment=dict(cfg.augment))
    datamodule.setup()
    model = build_model(cfg, Settings.of(cfg), datamodule)
    assert model.hparams.scheduler is None
    assert isinstance(model.configure_optimizers(), torch.optim.Optimizer)  # no scheduler config around it


@pytest.mark.parametrize("trainer", options("trainer"))
def test_trainer_options_compose(config, trainer: str) -> None:
    cfg = config(f"trainer={trainer}")
    assert cfg.trainer._target_ == "pytorch_lightning.Trainer"
    if trainer == "gpu":
        assert cfg.trainer.precision in {"bf16-mixed", "16-mixed"}


@pytest.mark.parametrize("augment", options("augment"))
def test_augment_presets_build(config, augment: str, tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    from transferlab.data.transforms import build_train_transform

    cfg = config(f"augment={augment}")
    transform = build_train_transform(image_size=32, **OmegaConf.to_container(cfg.augment))
    import numpy as np

    assert transform(image=np.zeros((40, 48, 3), np.uint8))["image"].shape == (3, 32, 32)


def test_unknown_group_option_lists_the_choices(config) -> None:
    from hydra.errors import MissingConfigException

    with pytest.raises(MissingConfigException, match=r"feature_extraction"):
        config("strategy=freeze")


@pytest.mark.parametrize(("launcher", "target"), [("slurm", "SlurmLauncher"), ("local", "LocalLauncher")])
def test_submitit_launchers_compose(launcher: str, target: str) -> None:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_.endswith(f"submitit_launcher.{target}")
    assert cfg.hydra.launcher.timeout_min > 0

"""Shared fixtures: tiny folder datasets, a local weights file standing in for ImageNet, the real Hydra config."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict
from pytorch_lightning import Callback
from torchvision.models import resnet18

from transferlab.demo import make_demo_dataset
from transferlab.startup import prepare

prepare()  # what every entry script does first: the configs' resolvers, the environment

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"

# Small enough for 2 CPU cores: 32 px images, a few dozen files, two epochs.
FAST_OVERRIDES = [
    "data=folder",
    "data.image_size=32",
    "data.batch_size=8",
    "data.num_workers=0",
    "data.val_fraction=0.2",
    "data.test_fraction=0.2",
    "trainer=cpu",
    "trainer.max_epochs=2",
    "+trainer.enable_model_summary=false",
    "+trainer.enable_progress_bar=false",
    "~callbacks.progress_bar",
    "plots.enabled=false",  # ~1.5 s a run; the tests of the plots turn them on
]


@pytest.fixture(scope="session")
def shapes_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo shapes at 32 px: 5 classes × 15 images, built once per test session."""
    return make_demo_dataset(tmp_path_factory.mktemp("data") / "shapes", images_per_class=15, image_size=32)


@pytest.fixture(scope="session")
def weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised ResNet-18 state_dict with its 1000-class head, in place of ImageNet weights."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "resnet18-random.pth"
    torch.save(resnet18().state_dict(), path)
    return path


def make_config(output_dir: Path, data_root: Path, *overrides: str) -> DictConfig:
    """The real train.yaml, composed as ``python train.py <overrides>`` would, shrunk to test size."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[*FAST_OVERRIDES, f"data.root={data_root}", *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


@pytest.fixture
def config(tmp_path: Path, shapes_root: Path, weights_file: Path):
    """``config(*overrides)``: a composed test config writing into this test's tmp_path/run."""

    def _config(*overrides: str, output_dir: Path | None = None) -> DictConfig:
        uses_pretrained = any(o.startswith("strategy=") and not o.endswith("scratch") for o in overrides)
        extra = [f"model.weights={weights_file}"] if uses_pretrained else []
        return make_config(output_dir or tmp_path / "run", shapes_root, *extra, *overrides)

    return _config


class InterruptAtEpoch(Callback):
    """Stands in for a killed process: raises when training reaches ``epoch``, after earlier checkpoints."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            raise InterruptedError(f"interrupted at epoch {self.epoch}")

"""Shared fixtures: tiny folder datasets, a local weights file standing in for ImageNet, the real Hydra config, the
environment of a subprocess run. Helpers that are not fixtures are in ``helpers.py``."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import pytest
import torch
from helpers import make_config
from omegaconf import DictConfig
from torchvision.models import ResNet18_Weights, resnet18

from transferlab.data.demo import make_demo_dataset
from transferlab.launch.startup import prepare

prepare()  # what every entry script does first: the configs' resolvers, the environment


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


@pytest.fixture
def config(tmp_path: Path, shapes_root: Path, weights_file: Path):
    """``config(*overrides)``: a composed test config writing into this test's tmp_path/run."""

    def _config(*overrides: str, output_dir: Path | None = None) -> DictConfig:
        uses_pretrained = any(o.startswith("strategy=") and not o.endswith("scratch") for o in overrides)
        extra = [f"model.weights={weights_file}"] if uses_pretrained else []
        return make_config(output_dir or tmp_path / "run", shapes_root, *extra, *overrides)

    return _config


@pytest.fixture(scope="session")
def torch_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``TORCH_HOME`` holding a stand-in for ResNet-18's ImageNet weights, the documented offline route.

    torchvision loads a file already in ``$TORCH_HOME/hub/checkpoints`` without downloading it; this one is a
    seeded random initialisation under the file name torchvision looks for.
    """
    home = tmp_path_factory.mktemp("torch_home")
    checkpoints = home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.manual_seed(0)
    # DEFAULT is the weight set transferlab loads for model.weights=imagenet (IMAGENET1K_V1 for resnet18).
    torch.save(resnet18().state_dict(), checkpoints / Path(urlparse(ResNet18_Weights.DEFAULT.url).path).name)
    return home


@pytest.fixture
def env(tmp_path: Path, torch_home: Path) -> dict[str, str]:
    """The environment of a script run in a subprocess: caches under tmp_path, the offline ImageNet stand-in."""
    return {
        **os.environ,
        "TRANSFERLAB_CACHE": str(tmp_path / "cache"),
        "TORCH_HOME": str(torch_home),
        "PYTHONUNBUFFERED": "1",
    }

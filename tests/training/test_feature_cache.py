"""Cached feature extraction (data.cache_features) and the speed settings of the model (compile, channels_last)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import transferlab.training.classifier
from transferlab import backbones
from transferlab.commands.train import run
from transferlab.training.classifier import ImageClassifier


def count_backbone_images(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Batch sizes of every pass through the backbone (its layer1) of the networks built in this test."""
    sizes: list[int] = []

    def build_backbone(*args, **kwargs):
        backbone = backbones.build_backbone(*args, **kwargs)
        backbone.net.layer1.register_forward_hook(lambda module, inputs, output: sizes.append(len(inputs[0])))
        return backbone

    monkeypatch.setattr(transferlab.training.classifier, "build_backbone", build_backbone)
    return sizes


def test_cached_run_reads_each_split_once_and_trains_as_the_uncached_one(config, tmp_path: Path, monkeypatch) -> None:
    sizes = count_backbone_images(monkeypatch)
    common = ["strategy=feature_extraction", "augment=none", "plots.enabled=false", "trainer.max_epochs=2"]
    cached = run(config(*common, "data.cache_features=true", output_dir=tmp_path / "cached"))
    # 75 images = 45 train + 15 val + 15 test, each through the backbone exactly once over 2 epochs and the test,
    # plus the 15 test images once more: the prediction pass that writes the run's predictions.csv.
    assert sum(sizes) == 75 + 15
    sizes.clear()
    uncached = run(config(*common, output_dir=tmp_path / "uncached"))
    assert sum(sizes) > 2 * 40  # the counter's control: uncached, every epoch reads the training images again

    assert cached["epochs"] == uncached["epochs"] == 2
    assert cached["best_val_acc"] == pytest.approx(uncached["best_val_acc"])
    assert cached["test_acc"] == pytest.approx(uncached["test_acc"])
    logged = (tmp_path / "cached" / "logs" / "version_0" / "metrics.csv").read_text().splitlines()[0]
    assert "val/acc" in logged and "train/loss_epoch" in logged

    state_cached = torch.load(tmp_path / "cached/checkpoints/last.ckpt", weights_only=True)["state_dict"]
    state_uncached = torch.load(tmp_path / "uncached/checkpoints/last.ckpt", weights_only=True)["state_dict"]
    assert state_cached.keys() == state_uncached.keys()
    assert any(key.startswith("net.layer4.") for key in state_cached)  # the backbone is in the checkpoint
    for key, value in state_uncached.items():
        # Same shuffles, same steps: only float rounding of differently batched convolutions may differ.
        torch.testing.assert_close(state_cached[key], value, rtol=1e-4, atol=1e-5, msg=key)
    # model.channels_last=auto leaves CPU runs in the default memory format.
    assert state_cached["net.conv1.weight"].is_contiguous()

    model = ImageClassifier.load_from_checkpoint(cached["best_ckpt"], map_location="cpu", weights_only=True).eval()
    reference = ImageClassifier.load_from_checkpoint(uncached["best_ckpt"], map_location="cpu", weights_only=True)
    images = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(images), reference.eval()(images), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["augment=light"], r"needs augment=none, but augment.random_crop_scale=\[0.35, 1.0\], augment.hflip=0.5"),
        (["strategy=finetune", "augment=none"], r"needs strategy=feature_extraction, not strategy=finetune"),
        (["strategy=feature_extraction", "augment=none", "data.cache_features=maybe"], r"must be true or false"),
    ],
)
def test_cache_features_is_refused_where_features_would_be_stale(config, overrides, message) -> None:
    cfg = config("strategy=feature_extraction", "data.cache_features=true", "plots.enabled=false", *overrides)
    with pytest.raises(ValueError, match=rf"data.cache_features.*{message}"):
        run(cfg)


def test_compile_and_channels_last_reach_the_network(config, tmp_path: Path, monkeypatch) -> None:
    compiled = []
    # Recording instead of compiling: inductor on 2 CPU cores takes minutes; this checks the plumbing only.
    monkeypatch.setattr(nn.Module, "compile", lambda self, *args, **kwargs: compiled.append(self))
    metrics = run(
        config("model.compile=true", "model.channels_last=true", "trainer.max_epochs=1", "plots.enabled=false")
    )
    assert len(compiled) == 1 and isinstance(compiled[0].fc, nn.Sequential)  # the ResNet, once over fit and test
    state = torch.load(tmp_path / "run/checkpoints/last.ckpt", weights_only=True)["state_dict"]
    assert state["net.conv1.weight"].is_contiguous(memory_format=torch.channels_last)
    model = ImageClassifier.load_from_checkpoint(metrics["best_ckpt"], map_location="cpu", weights_only=True)
    assert model.hparams.compile is True and model.hparams.channels_last is True
    assert not any("_orig_mod" in key for key in model.state_dict())  # checkpoints keep plain parameter names


def test_gpu_trainer_config_turns_on_cudnn_benchmark(config) -> None:
    assert config("trainer=gpu").trainer.benchmark is True
    assert config().trainer.get("benchmark") is None  # CPU runs keep torch's default

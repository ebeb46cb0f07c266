"""ImageClassifier: loss options, metric set, and what its hyper-parameters hold."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from transferlab.data.datamodule import FolderDataModule
from transferlab.launch.build import Settings, build_model
from transferlab.training.classifier import ImageClassifier

SGD = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.01}


def classifier(num_classes: int, **kwargs) -> ImageClassifier:
    names = [f"class{i}" for i in range(num_classes)]
    return ImageClassifier(
        backbone="resnet18", class_names=names, strategy={"name": "scratch"}, optimizer=SGD, **kwargs
    )


def test_top5_accuracy_only_with_more_than_five_classes() -> None:
    assert "val/acc_top5" in classifier(6).val_metrics.keys(keep_base=False)
    assert "val/acc_top5" not in classifier(5).val_metrics.keys(keep_base=False)
    assert {"val/acc", "val/f1"} <= set(classifier(5).val_metrics.keys(keep_base=False))


def test_loss_uses_label_smoothing_and_class_weights() -> None:
    model = classifier(3, label_smoothing=0.1, class_weights=[1.0, 2.0, 3.0]).eval().requires_grad_(False)
    images, labels = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 2])
    model.log = model.log_dict = lambda *args, **kwargs: None  # no Trainer attached
    with torch.no_grad():
        logits = model(images)
    loss = model._shared_step((images, labels), model.val_metrics, "val").item()
    expected = F.cross_entropy(logits, labels, weight=torch.tensor([1.0, 2.0, 3.0]), label_smoothing=0.1)
    assert loss == pytest.approx(expected.item(), rel=1e-5)
    assert loss != pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-3)


def test_class_weights_must_match_the_classes() -> None:
    with pytest.raises(ValueError, match=r"loss.class_weights has 2 entries but the data has 3 classes"):
        classifier(3, class_weights=[1.0, 2.0])


def test_balanced_class_weights_are_inverse_frequencies(config, tmp_path: Path, shapes_root: Path) -> None:
    import shutil

    for name, count in (("circle", 15), ("star", 5)):
        (tmp_path / "data" / name).mkdir(parents=True)
        for image in sorted((shapes_root / name).iterdir())[:count]:
            shutil.copy(image, tmp_path / "data" / name / image.name)
    cfg = config("loss.class_weights=balanced")
    datamodule = FolderDataModule(str(tmp_path / "data"), num_workers=0, augment=dict(cfg.augment))
    datamodule.setup()
    counts = datamodule.class_counts("train")
    model = build_model(cfg, Settings.of(cfg), datamodule)
    total = sum(counts)
    assert model.hparams.class_weights == pytest.approx([total / (2 * c) for c in counts])
    assert model.hparams.class_weights[1] > model.hparams.class_weights[0]


def test_hyperparameters_are_plain_values() -> None:
    def plain(value) -> bool:
        if isinstance(value, dict):
            return all(isinstance(k, str) and plain(v) for k, v in value.items())
        if isinstance(value, list | tuple):
            return all(plain(v) for v in value)
        return value is None or isinstance(value, str | int | float | bool)

    model = classifier(3, preprocessing={"image_size": 32, "mean": [0.5] * 3, "std": [0.5] * 3})
    assert plain(dict(model.hparams))


def test_uint8_batches_are_normalised_by_the_model_with_its_preprocessing() -> None:
    pre = {"image_size": 8, "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3], "resize_ratio": 0.875}
    model = classifier(3, preprocessing=pre).eval()
    images = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    expected = (images.float() / 255 - torch.tensor(pre["mean"]).view(3, 1, 1)) / torch.tensor(pre["std"]).view(3, 1, 1)
    torch.testing.assert_close(model.normalize(images), expected)
    floats = torch.randn(2, 3, 8, 8)
    assert model.normalize(floats) is floats  # already normalised input is taken as it is
    with torch.no_grad():
        torch.testing.assert_close(model(images), model.net(expected))
    assert not any(key.startswith("pixel_") for key in model.state_dict())  # checkpoints keep the network's keys
    with pytest.raises(ValueError, match="preprocessing"):
        classifier(3).normalize(images)

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


@pytest.mark.parametrize("num_classes", [6, 20, 100])
@pytest.mark.parametrize("first_batch_hits_top5", [False, True])
def test_logged_figures_equal_scikit_learns(num_classes: int, first_batch_hits_top5: bool) -> None:
    """Accuracy, macro F1 and top-5 accuracy as the module logs them equal scikit-learn's on the same predictions,
    whether or not the first batch (Lightning's sanity check: an untrained model) has a top-5 hit (issue 24)."""
    from sklearn.metrics import accuracy_score, f1_score, top_k_accuracy_score

    metrics = classifier(num_classes).val_metrics
    generator = torch.Generator().manual_seed(num_classes)
    logits, targets = [], []
    for batch in range(6):
        batch_logits = torch.randn(16, num_classes, generator=generator)
        batch_targets = torch.randint(num_classes, (16,), generator=generator)
        if batch == 0:
            order = batch_logits.argsort(dim=1)  # ascending: the first column is each row's least likely class
            batch_targets = order[:, -1] if first_batch_hits_top5 else order[:, 0]
        metrics.update(batch_logits, batch_targets)
        logits.append(batch_logits)
        targets.append(batch_targets)
    logits, targets = torch.cat(logits), torch.cat(targets)
    figures = {key.removeprefix("val/"): value.item() for key, value in metrics.compute().items()}
    predicted = logits.argmax(1).numpy()
    assert figures["acc"] == pytest.approx(accuracy_score(targets, predicted), abs=1e-6)
    assert figures["f1"] == pytest.approx(f1_score(targets, predicted, average="macro", zero_division=0), abs=1e-6)
    top5 = top_k_accuracy_score(targets, logits.softmax(1).numpy(), k=5, labels=range(num_classes))
    assert figures["acc_top5"] == pytest.approx(top5, abs=1e-6)

"""EMA of the weights and MixUp/CutMix: each changes what it should, and nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from transferlab.commands.train import run
from transferlab.data.datamodule import FolderDataModule
from transferlab.launch.cli import ConfigError
from transferlab.training.classifier import ImageClassifier
from transferlab.training.mixing import build_batch_mixing

SGD = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.01}


def classifier(**kwargs) -> ImageClassifier:
    model = ImageClassifier(
        backbone="resnet18", class_names=["a", "b", "c"], strategy={"name": "scratch"}, optimizer=SGD, **kwargs
    )
    model.log = model.log_dict = lambda *args, **kw: None  # no Trainer attached
    return model


@pytest.mark.parametrize(("options", "kind"), [({"mixup_alpha": 0.4}, v2.MixUp), ({"cutmix_alpha": 1.0}, v2.CutMix)])
def test_mixing_trains_on_mixed_images_with_soft_targets_and_hard_label_metrics(options, kind) -> None:
    model = classifier(mixing=options)
    assert isinstance(model.batch_mixing, kind)
    images, labels = torch.rand(6, 3, 32, 32), torch.tensor([0, 1, 2, 0, 1, 2])
    seen = []
    model.net.register_forward_hook(lambda module, args, output: seen.append((args[0].clone(), output.detach())))

    torch.manual_seed(1)
    mixed_images, soft_targets = model.batch_mixing(images, labels)
    torch.manual_seed(1)
    loss = model.training_step((images, labels), 0)

    network_input, logits = seen[-1]
    assert not torch.equal(network_input, images), "the network must see mixed images"
    assert torch.equal(network_input, mixed_images)
    assert soft_targets.shape == (6, 3) and not torch.equal(soft_targets, F.one_hot(labels, 3).float())
    assert loss.item() == pytest.approx(F.cross_entropy(logits, soft_targets).item(), rel=1e-5)
    assert loss.item() != pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-4)
    hard_acc = (logits.argmax(1) == labels).float().mean().item()
    assert model.train_metrics["acc"].compute().item() == pytest.approx(hard_acc)


def test_mixing_leaves_validation_alone_and_is_off_by_default() -> None:
    assert classifier().batch_mixing is None
    model = classifier(mixing={"mixup_alpha": 1.0, "cutmix_alpha": 1.0}).eval()
    assert isinstance(model.batch_mixing, v2.RandomChoice)
    images, labels = torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 2, 0])
    seen = []
    model.net.register_forward_hook(lambda module, args, output: seen.append(args[0]))
    with torch.no_grad():
        model.validation_step((images, labels), 0)
    assert torch.equal(seen[-1], images)


def test_mixing_alpha_errors_name_the_key() -> None:
    with pytest.raises(ValueError, match=r"mixing\.cutmix_alpha=-1"):
        build_batch_mixing(3, cutmix_alpha=-1)


def test_ema_validates_checkpoints_and_tests_the_averaged_weights(config, tmp_path: Path) -> None:
    cfg = config("ema.enabled=true", "ema.decay=0.5", "trainer.max_epochs=1", "plots.enabled=false")
    metrics = run(cfg)

    checkpoint = torch.load(metrics["best_ckpt"], weights_only=True)
    averaged, raw = checkpoint["state_dict"], checkpoint["current_model_state"]
    assert not torch.equal(averaged["net.fc.0.weight"], raw["net.fc.0.weight"]), "EMA weights must differ from raw ones"

    # The monitored val/acc is the accuracy of the averaged weights, and test ran with them too.
    model = ImageClassifier.load_from_checkpoint(metrics["best_ckpt"], weights_only=True).eval()
    datamodule = FolderDataModule(cfg.data.root, num_workers=0, image_size=32, batch_size=8, augment=dict(cfg.augment))
    datamodule.splits_file = str(tmp_path / "run" / "splits.csv")
    datamodule.setup()

    def accuracy(state_dict: dict, split: str) -> float:
        model.load_state_dict(state_dict)
        correct = total = 0
        with torch.no_grad():
            for images, labels in getattr(datamodule, f"{split}_dataloader")():
                correct += (model(images).argmax(1) == labels).sum().item()
                total += len(labels)
        return correct / total

    assert metrics["best_val_acc"] == pytest.approx(accuracy(averaged, "val"))
    assert metrics["test_acc"] == pytest.approx(accuracy(averaged, "test"))


def test_ema_decay_error_names_the_key(config) -> None:
    with pytest.raises(ValueError, match=r"ema\.decay=1\.5"):
        run(config("ema.enabled=true", "ema.decay=1.5"))


def test_fast_dev_run_is_refused_up_front_with_the_alternative(config, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"fast_dev_run.*\+trainer\.limit_train_batches=2"):
        run(config("+trainer.fast_dev_run=true"))
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_lr_find_cycles_a_small_training_set_until_it_has_its_steps(config, tmp_path: Path) -> None:
    # 45 training images in batches of 8: 6 steps an epoch, 1 epoch; the finder wants 20 steps (fastai cycles too).
    run(config("tune.lr_find=true", "tune.num_training=20", "trainer.max_epochs=1", "data.batch_size=8"))
    found = json.loads((tmp_path / "run" / "lr_find.json").read_text())
    assert len(found["lr"]) > 12 and found["lr"] == sorted(found["lr"])  # over 2 epochs' worth: it cycled


def test_lr_find_sets_the_head_rate_and_the_backbone_keeps_its_scale(config, tmp_path: Path) -> None:
    cfg = config(
        "strategy=finetune",
        "strategy.backbone_lr_scale=0.1",
        "tune.lr_find=true",
        "tune.num_training=16",
        "data.batch_size=2",  # 16 finder steps within the one epoch
        "trainer.max_epochs=1",
        "plots.enabled=false",
    )
    metrics = run(cfg)

    run_dir = tmp_path / "run"
    found = json.loads((run_dir / "lr_find.json").read_text())
    suggestion = found["suggestion"]
    assert 1e-6 <= suggestion <= 1.0 and suggestion != cfg.optimizer.lr
    assert len(found["lr"]) == len(found["loss"]) > 10
    assert (run_dir / "plots" / "lr_find.png").stat().st_size > 1000

    checkpoint = torch.load(metrics["best_ckpt"], weights_only=True)
    assert checkpoint["hyper_parameters"]["optimizer"]["lr"] == pytest.approx(suggestion)
    base = {group["name"]: group["initial_lr"] for group in checkpoint["optimizer_states"][0]["param_groups"]}
    assert base["head"] == pytest.approx(suggestion)
    assert base["layer4"] == pytest.approx(0.1 * suggestion)
    assert base["stem"] == pytest.approx(0.1 * suggestion)

"""Strategies: which stages train when, and that frozen really means frozen (weights and BatchNorm statistics)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pytorch_lightning import Callback

from transferlab.backbones.record import Backbone
from transferlab.backbones.weights import load_backbone_weights
from transferlab.launch.build import Settings, build_datamodule, build_model, build_trainer
from transferlab.launch.config_checks import validate
from transferlab.training.classifier import ImageClassifier
from transferlab.training.finetuning import Strategy, hold_frozen, set_trainable_stages

RESNET = ["stem", "layer1", "layer2", "layer3", "layer4"]
ALL = {*RESNET, "head"}


@pytest.mark.parametrize(
    ("strategy", "epoch", "expected"),
    [
        (Strategy("scratch"), 0, ALL),
        (Strategy("feature_extraction"), 50, {"head"}),
        (Strategy("finetune"), 0, ALL),
        (Strategy("finetune", freeze_epochs=2), 1, {"head"}),
        (Strategy("finetune", freeze_epochs=2), 2, ALL),
        (Strategy("finetune", unfreeze_from="layer3"), 0, {"head", "layer3", "layer4"}),
        (Strategy("finetune", freeze_epochs=1, unfreeze_every=2), 0, {"head"}),
        (Strategy("finetune", freeze_epochs=1, unfreeze_every=2), 2, {"head", "layer4"}),
        (Strategy("finetune", freeze_epochs=1, unfreeze_every=2), 3, {"head", "layer4", "layer3"}),
        (
            Strategy("finetune", freeze_epochs=1, unfreeze_every=2, unfreeze_from="layer3"),
            99,
            {"head", "layer4", "layer3"},
        ),
    ],
)
def test_trainable_stages(strategy: Strategy, epoch: int, expected: set[str]) -> None:
    assert strategy.trainable_stages(epoch, RESNET) == expected


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"name": "freeze"}, "strategy.name='freeze'"),
        ({"name": "finetune", "unfreeze_from": 2}, "strategy.unfreeze_from=2"),
        ({"name": "finetune", "freeze_layers": 1.5}, "strategy.freeze_layers=1.5"),
        ({"name": "feature_extraction", "freeze_layers": 10}, "strategy=feature_extraction"),
        ({"name": "finetune", "backbone_lr_scale": 0}, "strategy.backbone_lr_scale=0"),
        ({"name": "finetune", "layer_decay": 1.5}, "strategy.layer_decay=1.5"),
        ({"name": "scratch", "freeze_epochs": 2}, "strategy=scratch"),
    ],
)
def test_bad_strategy_settings_name_the_key(kwargs: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key.replace(".", r"\.").replace("[", r"\[")):
        Strategy(**kwargs)


def test_freeze_epochs_beyond_max_epochs_is_refused(config) -> None:
    cfg = config("strategy=finetune", "strategy.freeze_epochs=2", "trainer.max_epochs=2")
    with pytest.raises(ValueError, match=r"strategy.freeze_epochs=2 >= trainer.max_epochs=2"):
        validate(cfg)


def test_frozen_batchnorm_stays_in_eval_mode_after_train() -> None:
    model = ImageClassifier(
        backbone="resnet18", class_names=["a", "b"], strategy={"name": "feature_extraction"}, optimizer={}
    )
    set_trainable_stages(model.backbone, {"head"})
    model.train()
    batchnorms = [m for m in model.net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert batchnorms and not any(bn.training for bn in batchnorms)
    assert model.net.fc.training
    set_trainable_stages(model.backbone, ALL)
    model.train()
    assert all(bn.training for bn in batchnorms)
    model.eval()
    hold_frozen(model.backbone)
    assert not any(bn.training for bn in batchnorms)


def snapshot(backbone: Backbone) -> dict[str, dict[str, torch.Tensor]]:
    """Every parameter and buffer of every stage, copied."""
    return {
        stage.name: {k: v.detach().clone() for k, v in stage.tensors().items()} for stage in backbone.stages_with_head()
    }


def changed_stages(before: dict, after: dict) -> set[str]:
    return {
        stage
        for stage in before
        if any(not torch.equal(before[stage][k], after[stage][k]) for k in before[stage] if "num_batches" not in k)
    }


class EpochRecorder(Callback):
    """Records the trainable stages at each epoch start and the network state at each epoch end."""

    def __init__(self) -> None:
        self.trainable: list[set[str]] = []
        self.states: list[dict] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.trainable.append(
            {
                stage.name
                for stage in pl_module.backbone.stages_with_head()
                if all(p.requires_grad for p in stage.parameters())
            }
        )

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.states.append(snapshot(pl_module.backbone))


def train(cfg, tmp_path: Path) -> tuple[dict, EpochRecorder]:
    """The real wiring of train.py (data, model, weights, callbacks, Trainer), with a recorder attached."""
    validate(cfg)
    settings = Settings.of(cfg)
    datamodule = build_datamodule(cfg, settings, tmp_path, None)
    model = build_model(cfg, settings, datamodule)
    load_backbone_weights(model.backbone, cfg.model.weights)
    initial = snapshot(model.backbone)
    trainer = build_trainer(cfg)
    recorder = EpochRecorder()
    trainer.callbacks.append(recorder)
    trainer.fit(model, datamodule=datamodule)
    return initial, recorder


def test_feature_extraction_changes_only_the_head(config, tmp_path: Path) -> None:
    initial, recorder = train(config("strategy=feature_extraction"), tmp_path)
    assert changed_stages(initial, recorder.states[-1]) == {"head"}  # BN running stats included
    assert recorder.trainable == [{"head"}, {"head"}]


def test_finetune_warm_up_then_unfreezes_on_time(config, tmp_path: Path) -> None:
    cfg = config("strategy=finetune", "strategy.freeze_epochs=1", "trainer.max_epochs=2")
    initial, recorder = train(cfg, tmp_path)
    assert recorder.trainable == [{"head"}, ALL]
    assert changed_stages(initial, recorder.states[0]) == {"head"}
    assert changed_stages(recorder.states[0], recorder.states[1]) == ALL


def test_unfreeze_from_leaves_earlier_stages_untouched(config, tmp_path: Path) -> None:
    initial, recorder = train(config("strategy=finetune", "strategy.unfreeze_from=layer3"), tmp_path)
    assert changed_stages(initial, recorder.states[-1]) == {"layer3", "layer4", "head"}

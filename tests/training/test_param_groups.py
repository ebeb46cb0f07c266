"""Parameter groups: exact per-stage learning rates and no weight decay on norm and bias parameters."""

from __future__ import annotations

import pytest
import torch

from transferlab.backbones.builder import build_backbone
from transferlab.training.classifier import ImageClassifier
from transferlab.training.finetuning import Strategy
from transferlab.training.param_groups import build_param_groups

SGD = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.01, "momentum": 0.9, "weight_decay": 1e-4}


def lrs_by_name(groups: list[dict]) -> dict[str, float]:
    return {group["name"]: group["lr"] for group in groups}


def test_finetune_groups_get_backbone_scale_and_layer_decay() -> None:
    net = build_backbone("resnet18", num_classes=3)
    strategy = Strategy(name="finetune", backbone_lr_scale=0.1, layer_decay=0.5)
    lrs = lrs_by_name(build_param_groups(net, strategy, lr=0.01))
    expected = {
        "head": 0.01,
        "layer4": 1e-3,
        "layer3": 5e-4,
        "layer2": 2.5e-4,
        "layer1": 1.25e-4,
        "stem": 6.25e-5,
    }
    for stage, lr in expected.items():
        assert lrs[stage] == pytest.approx(lr)
        assert lrs[f"{stage}/no_decay"] == pytest.approx(lr)


def test_scratch_trains_everything_at_one_rate() -> None:
    net = build_backbone("resnet18", num_classes=3)
    groups = build_param_groups(net, Strategy(name="scratch"), lr=0.05)
    assert {group["lr"] for group in groups} == {0.05}


def test_every_parameter_in_exactly_one_group_and_no_decay_on_1d() -> None:
    backbone = build_backbone("resnet18", num_classes=3, hidden_dim=16)
    net = backbone.net
    groups = build_param_groups(backbone, Strategy(name="finetune", backbone_lr_scale=0.1), lr=0.01)
    grouped = [id(p) for group in groups for p in group["params"]]
    assert sorted(grouped) == sorted(id(p) for p in net.parameters())
    for group in groups:
        if group["name"].endswith("/no_decay"):
            assert group["weight_decay"] == 0.0
            assert all(p.ndim == 1 for p in group["params"])
        else:
            assert "weight_decay" not in group  # inherits the optimizer's
            assert all(p.ndim > 1 for p in group["params"])
    bn_weight_group = next(g for g in groups if any(p is net.bn1.weight for p in g["params"]))
    assert bn_weight_group["name"] == "stem/no_decay"


def test_module_builds_the_configured_optimizer_with_named_groups() -> None:
    model = ImageClassifier(
        backbone="resnet18",
        class_names=["a", "b", "c"],
        strategy={"name": "finetune", "backbone_lr_scale": 0.2},
        optimizer=SGD,
    )
    optimizer = model.configure_optimizers()
    assert isinstance(optimizer, torch.optim.SGD)
    lrs = lrs_by_name(optimizer.param_groups)
    assert lrs["head"] == pytest.approx(0.01)
    assert lrs["layer1"] == pytest.approx(0.002)
    decayed = next(g for g in optimizer.param_groups if g["name"] == "layer1")
    assert decayed["weight_decay"] == pytest.approx(1e-4)
    assert decayed["momentum"] == pytest.approx(0.9)


def test_non_positive_learning_rate_names_the_key() -> None:
    net = build_backbone("resnet18", num_classes=3)
    with pytest.raises(ValueError, match=r"optimizer.lr=-0.1"):
        build_param_groups(net, Strategy(name="scratch"), lr=-0.1)

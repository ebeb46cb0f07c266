"""conf/model/: every model config composes onto the shared base, ``model.pretrained`` flows into the weights of the
pretrained strategies only, and a non-ResNet backbone trains, checkpoints and reloads end to end."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from helpers import CONF_DIR, make_config
from hydra import compose, initialize_config_dir
from hydra.errors import MissingConfigException

from transferlab.backbones.builder import check_backbone_name
from transferlab.commands.train import run
from transferlab.launch.config_checks import validate
from transferlab.training.classifier import ImageClassifier

MODELS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))


def compose_train(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides))


@pytest.mark.parametrize("model", MODELS)
def test_every_model_config_names_a_backbone_on_the_shared_base(model: str) -> None:
    cfg = compose_train(f"model={model}")
    check_backbone_name(cfg.model.backbone)
    assert cfg.model.pretrained == "imagenet" and cfg.model.weights is None  # strategy=scratch, the default
    assert set(cfg.model.head) == {"hidden_dim", "dropout"} and cfg.model.classifier_hidden is True


def test_the_seed_families_have_configs() -> None:
    assert {"vgg16", "timm_inception_resnet_v2", "efficientnet_b0", "convnext_tiny", "vit_b_16"} <= set(MODELS)
    assert "mobilenet_v3_large" in MODELS and not any(m.startswith("_") for m in MODELS)


def test_the_shared_base_is_not_a_model_choice() -> None:
    with pytest.raises(MissingConfigException):
        compose_train("model=_model_base")


def test_one_sweep_over_strategies_shares_model_pretrained(tmp_path: Path) -> None:
    """python train.py -m strategy=scratch,feature_extraction,finetune model.pretrained=/path/w.pth"""
    weights = str(tmp_path / "w.pth")
    expected = {"scratch": None, "feature_extraction": weights, "finetune": weights}
    for strategy, weights_of_job in expected.items():
        cfg = compose_train(f"strategy={strategy}", f"model.pretrained={weights}")
        assert cfg.model.weights == weights_of_job, strategy
    assert compose_train("strategy=finetune").model.weights == "imagenet"


def test_scratch_says_it_ignores_pretrained_and_refuses_explicit_weights(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="transferlab.launch.config_checks"):
        validate(compose_train("strategy=scratch", "model.pretrained=/some/w.pth"))
    assert "model.pretrained=/some/w.pth is not used" in caplog.text
    with pytest.raises(ValueError, match=r"strategy=scratch trains from random weights, but model.weights=/w.pth"):
        validate(compose_train("strategy=scratch", "model.weights=/w.pth"))


def test_a_timm_backbone_trains_from_model_pretrained_and_reloads(
    tmp_path: Path, shapes_root: Path, weights_file: Path
) -> None:
    """timm/test_vit (fixed input size, built for 32 px) fine-tuned from a weights file given as model.pretrained:
    the last stage and the head train, the checkpoint reloads without the network and gives the same logits."""
    from transferlab.backbones.builder import build_backbone

    source = build_backbone("timm/test_vit", 2, image_size=32).net.state_dict()
    pretrained = tmp_path / "test_vit.pth"
    torch.save(source, pretrained)
    cfg = make_config(
        tmp_path / "run",
        shapes_root,
        "model.backbone=timm/test_vit",
        "strategy=finetune",
        "strategy.unfreeze_from=-1",
        f"model.pretrained={pretrained}",
        "trainer.max_epochs=1",
        "augment=none",
    )
    metrics = run(cfg)
    assert 0 < metrics["trainable_params"] < sum(v.numel() for v in source.values())
    model = ImageClassifier.load_from_checkpoint(metrics["best_ckpt"], map_location="cpu", weights_only=True).eval()
    assert model.hparams.preprocessing["image_size"] == 32 and model.hparams.preprocessing["mean"] == [0.5] * 3
    state = model.net.state_dict()
    assert torch.equal(state["patch_embed.proj.weight"], source["patch_embed.proj.weight"])  # a frozen stage
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 32, 32, dtype=torch.uint8)).shape == (2, 5)


def test_seed_recipes_say_what_they_do() -> None:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        fe = compose("train", overrides=["experiment=vgg16_dogs_vs_cats_fe"])
        ft = compose("train", overrides=["experiment=vgg16_dogs_vs_cats_ft"])
        flowers = compose("train", overrides=["experiment=inception_resnet_v2_flowers"])
    assert fe.model.backbone == "vgg16" and fe.strategy.name == "feature_extraction"
    assert (fe.model.head.hidden_dim, fe.model.head.dropout, fe.data.image_size) == (256, 0.5, 150)
    assert fe.optimizer._target_ == "torch.optim.RMSprop" and fe.optimizer.lr == 2e-5
    assert ft.strategy.unfreeze_from == "block5" and ft.optimizer.lr == 1e-5 and not ft.model.classifier_hidden
    assert flowers.model.backbone == "timm/inception_resnet_v2" and flowers.strategy.freeze_layers == 401
    assert flowers.augment.rot90 > 0 and flowers.data.val_fraction == 0.1 and flowers.data.image_size is None
    for cfg in (fe, ft, flowers):
        validate(cfg)

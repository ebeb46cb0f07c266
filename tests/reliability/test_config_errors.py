"""Command-line mistakes fail before anything slow, naming the key (and the choices where there are some)."""

from __future__ import annotations

import pytest
from hydra.errors import MissingConfigException

from transferlab.launch.config_checks import validate


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optimizer.lr=-0.1"], r"optimizer\.lr=-0\.1 must be a number > 0"),
        (["optimizer.lr=fast"], r"optimizer\.lr='fast' must be a number"),
        (["optimizer.weight_decay=-1"], r"optimizer\.weight_decay=-1"),
        (["optimizer=sgd", "optimizer.momentum=1.5"], r"optimizer\.momentum=1\.5"),
        (["trainer.max_epochs=ten"], r"trainer\.max_epochs='ten' must be a positive integer"),
        (["trainer.max_epochs=0"], r"trainer\.max_epochs=0"),
        (["data.batch_size=0"], r"data\.batch_size=0 must be an integer >= 1"),
        (["data.image_size=1.5"], r"data\.image_size=1\.5"),
        (["data.num_workers=many"], r"data\.num_workers='many'.*or auto"),
        (["data.val_fraction=1.2"], r"data\.val_fraction=1\.2"),
        (["data.val_fraction=0.5", "data.test_fraction=0.5"], r"data\.val_fraction=0\.5 \+ data\.test_fraction=0\.5"),
        (["data.bad_images=ignore"], r"data\.bad_images='ignore' is not a policy; choose one of: skip, error"),
        (["data.verify=deep"], r"data\.verify='deep'.*auto, none, header, full"),
        (["data.balanced_sampler=maybe"], r"data\.balanced_sampler='maybe' must be true or false"),
        (["model.backbone=resnet19"], r"model\.backbone='resnet19'.*Did you mean: .*resnet18"),
        (["strategy=finetune", "strategy.unfreeze_from=-6"], r"unfreeze_from=-6: resnet18 has 5 stages"),
        (["strategy=finetune", "strategy.freeze_layers=41"], r"freeze_layers=41: resnet18 has 40 parameterised"),
        (["data.image_size=64", "model.backbone=vit_b_16"], r"data\.image_size=64: vit_b_16 takes 224 px inputs only"),
        (["model.head.dropout=1.0"], r"model\.head\.dropout=1\.0"),
        (["model.head.hidden_dim=-3"], r"model\.head\.hidden_dim=-3"),
        (["loss.label_smoothing=2"], r"loss\.label_smoothing=2"),
        (["loss.class_weights=[1,-1]"], r"loss\.class_weights"),
        (["augment.hflip=2"], r"augment\.hflip=2"),
        (["augment.random_crop_scale=[0.9,0.1]"], r"augment\.random_crop_scale"),
        (["seed=abc"], r"seed='abc' must be an integer"),
        (["strategy.name=freeze"], r"strategy\.name='freeze'.*choose one of: scratch, feature_extraction, finetune"),
        (["strategy=finetune", "strategy.freeze_epochs=two"], r"strategy\.freeze_epochs='two' must be an integer"),
        (["strategy=finetune", "strategy.freeze_epochs=-1"], r"strategy\.freeze_epochs=-1"),
        (["strategy=finetune", "strategy.freeze_epochs=5"], r"strategy\.freeze_epochs=5 >= trainer\.max_epochs=2"),
        (["strategy=finetune", "strategy.unfreeze_from=layer9"], r"unfreeze_from='layer9' is not a stage.*layer4"),
        (["strategy=finetune", "strategy.backbone_lr_scale=x"], r"strategy\.backbone_lr_scale='x' must be a number"),
    ],
)
def test_wrong_values_name_the_key(config, overrides: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate(config(*overrides))


@pytest.mark.parametrize(
    ("override", "choice"),
    [
        ("optimizer=adam", "adamw"),
        ("augment=medium", "strong"),
        ("strategy=freeze", "finetune"),
        ("model=vgg", "resnet50"),
    ],
)
def test_unknown_group_options_list_the_choices(config, override: str, choice: str) -> None:
    with pytest.raises(MissingConfigException, match=choice):
        config(override)


def test_the_shipped_config_is_valid(config) -> None:
    assert validate(config()).name == "scratch"

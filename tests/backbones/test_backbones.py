"""Backbones of every family: the record (stages in order covering every parameter once, head width, pooled
features), freezing per stage for every norm kind, group learning rates, weights from ImageNet / a file /
a checkpoint, preprocessing from the weights, and names.

Models are the smallest of each family at 32-64 px, built once per module (``backbone()``), random weights only.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest
import timm.models._builder
import torch
import torchvision.models
import torchvision.models._api
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torchvision.models import resnet18
from torchvision.models.vision_transformer import VisionTransformer

from transferlab.backbones import torchvision_families
from transferlab.backbones.builder import (
    available_backbones,
    backbone_from,
    backbone_preprocessing,
    build_backbone,
    build_head,
    check_backbone_name,
    main,
)
from transferlab.backbones.record import Backbone
from transferlab.backbones.weights import load_backbone_weights, read_state_dict_file
from transferlab.training.finetuning import Strategy, apply_strategy, hold_frozen, set_trainable_stages
from transferlab.training.param_groups import build_param_groups

# One model per family that runs fast at a small size: (name, input size).
FORWARD = {
    "resnet18": 32,
    "vgg11": 32,
    "squeezenet1_0": 32,
    "densenet121": 32,
    "mobilenet_v3_small": 32,
    "efficientnet_b0": 32,
    "tiny_vit": 32,  # a torchvision VisionTransformer of 2 blocks (vit_b_16's family, at 32 px)
    "timm/test_vit": 32,  # built with img_size=32
    "timm/test_convnext": 32,
    "timm/test_efficientnet": 32,
    "timm/test_resnet": 32,
}
# The other families: built, not run (their smallest input is large, or they are large).
STRUCTURE_ONLY = [
    "convnext_tiny",
    "swin_t",
    "vit_b_16",
    "maxvit_t",
    "inception_v3",
    "googlenet",
    "shufflenet_v2_x0_5",
    "mnasnet0_5",
    "mobilenet_v2",
    "regnet_y_400mf",
    "alexnet",
    "resnext50_32x4d",
    "timm/inception_resnet_v2",
]
NUM_CLASSES = 3


@functools.cache
def backbone(name: str, **kwargs) -> Backbone:
    torch.manual_seed(0)
    if name == "tiny_vit":
        model = VisionTransformer(image_size=32, patch_size=16, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64)
        make_head = functools.partial(build_head, num_classes=NUM_CLASSES, hidden_dim=None, dropout=0.0)
        return backbone_from("vit_b_16", torchvision_families.adapt(model, make_head))
    return build_backbone(name, NUM_CLASSES, image_size=FORWARD.get(name), **kwargs)


def images(name: str, batch: int = 4) -> torch.Tensor:
    return torch.randn(batch, 3, FORWARD[name], FORWARD[name], generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", [*FORWARD, *STRUCTURE_ONLY])
def test_stages_cover_every_parameter_exactly_once(name: str) -> None:
    record = backbone(name)
    staged = [id(p) for stage in record.stages_with_head() for p in stage.parameters()]
    assert len(staged) == len(set(staged))
    assert set(staged) == {id(p) for p in record.net.parameters()}
    assert len(record.stages) >= 3 and "head" not in record.stage_names
    assert len(set(record.stage_names)) == len(record.stage_names)


@pytest.mark.parametrize("name", FORWARD)
def test_stages_run_in_input_to_output_order(name: str) -> None:
    record = backbone(name)
    order: list[int] = []
    handles = [
        module.register_forward_pre_hook(lambda m, a, i=index: order.append(i))
        for index, stage in enumerate(record.stages_with_head())
        for module in stage.modules
    ]
    try:
        with torch.no_grad():
            record.net.eval()(images(name, 1))
    finally:
        for handle in handles:
            handle.remove()
    assert order == sorted(order)
    assert set(order) == set(range(len(record.stages) + 1))


@pytest.mark.parametrize("name", FORWARD)
def test_head_is_sized_from_the_models_own_feature_width(name: str) -> None:
    record = backbone(name)
    first_linear = next(m for m in record.head.modules() if isinstance(m, nn.Linear))
    assert first_linear.in_features == record.num_features
    with torch.no_grad():
        record.net.eval()
        logits = record.net(images(name, 2))
        features = record.pooled_features(images(name, 2))
    assert logits.shape == (2, NUM_CLASSES)
    assert features.shape == (2, record.num_features)
    torch.testing.assert_close(record.head(features), logits)


@pytest.mark.parametrize(("name", "width"), [("resnet18", 512), ("vgg11", 4096), ("efficientnet_b0", 1280)])
def test_head_width_and_hidden_layer(name: str, width: int) -> None:
    record = build_backbone(name, num_classes=7, hidden_dim=32, dropout=0.5)
    linear_layers = [m for m in record.head.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear_layers] == [(width, 32), (32, 7)]
    assert any(isinstance(m, nn.Dropout) and m.p == 0.5 for m in record.head.modules())


@pytest.mark.parametrize("name", FORWARD)
def test_frozen_stages_stay_bit_identical_while_the_last_stage_and_head_train(name: str) -> None:
    record = backbone(name)
    strategy = Strategy("finetune", unfreeze_from=-1, backbone_lr_scale=0.5, layer_decay=0.5)
    record.net.train()
    apply_strategy(record, strategy, epoch=0)
    *frozen, last, head = record.stages_with_head()
    for stage in frozen:
        assert not any(p.requires_grad for p in stage.parameters())
        assert not any(m.training for module in stage.modules for m in module.modules())  # BN, dropout, drop path
    assert all(p.requires_grad for p in [*last.parameters(), *head.parameters()])
    before = {s.name: {k: v.detach().clone() for k, v in s.tensors().items()} for s in record.stages_with_head()}
    optimizer = torch.optim.SGD(build_param_groups(record, strategy, lr=0.1), lr=0.1, weight_decay=1e-4)
    x, y = images(name), torch.tensor([0, 1, 2, 0])
    nn.functional.cross_entropy(record.net(x), y).backward()
    optimizer.step()
    record.net.train()  # as Lightning does after validation: frozen parts must stay frozen
    hold_frozen(record)
    with torch.no_grad():
        record.net(x)  # a forward in train mode moves no frozen BatchNorm statistics
    after = {s.name: s.tensors() for s in record.stages_with_head()}
    for stage in frozen:
        for key, value in before[stage.name].items():
            assert torch.equal(value, after[stage.name][key]), f"{stage.name}: {key} moved"
    for stage in (last, head):
        assert any(not torch.equal(v, after[stage.name][k]) for k, v in before[stage.name].items()), stage.name


@pytest.mark.parametrize("name", FORWARD)
def test_frozen_backbone_computes_its_eval_features_in_train_mode(name: str) -> None:
    """Feature extraction: BatchNorm, dropout and stochastic depth of the frozen backbone are off in training too,
    so features cached once in eval mode are the features an uncached run trains on."""
    record = backbone(name)
    record.net.train()
    set_trainable_stages(record, {"head"})
    with torch.no_grad():
        training = record.pooled_features(images(name))
        record.net.eval()
        evaluated = record.pooled_features(images(name))
    assert torch.equal(training, evaluated)
    norms = [m for s in record.stages for mod in s.modules for m in mod.modules() if isinstance(m, nn.LayerNorm)]
    assert all(not p.requires_grad for norm in norms for p in norm.parameters())


def test_group_learning_rates_follow_the_backbones_own_stages() -> None:
    record = backbone("vgg11")
    strategy = Strategy("finetune", backbone_lr_scale=0.1, layer_decay=0.5)
    lrs = {group["name"]: group["lr"] for group in build_param_groups(record, strategy, lr=0.01)}
    expected = {"head": 0.01, "classifier": 1e-3, "block5": 5e-4, "block4": 2.5e-4, "block1": 1e-3 * 0.5**5}
    for stage, lr in expected.items():
        assert lrs[stage] == pytest.approx(lr)
        assert lrs[f"{stage}/no_decay"] == pytest.approx(lr)
    assert list(lrs)[:2] == ["head", "head/no_decay"]


def test_timm_no_weight_decay_list_is_honoured() -> None:
    record = backbone("timm/test_vit")
    groups = build_param_groups(record, Strategy("finetune"), lr=0.01)
    names = {id(p): n for n, p in record.net.named_parameters()}
    no_decay = {names[id(p)] for g in groups if g["name"].endswith("/no_decay") for p in g["params"]}
    assert {"pos_embed", "cls_token"} <= no_decay
    assert all(names[id(p)] not in no_decay for g in groups if "/" not in g["name"] for p in g["params"])


def test_vgg_stages_and_the_keras_recipe() -> None:
    record = backbone("vgg11")
    assert record.stage_names == ["block1", "block2", "block3", "block4", "block5", "classifier"]
    assert Strategy("finetune", unfreeze_from="block5").trainable_stages(0, record.stage_names) == {
        "block5",
        "classifier",
        "head",
    }
    # Keras include_top=False: the pooled conv features under the new head; -1 is block5.
    cut = build_backbone("vgg11", NUM_CLASSES, hidden_dim=256, dropout=0.5, classifier_hidden=False)
    assert cut.stage_names[-1] == "block5" and cut.num_features == 512
    assert Strategy("finetune", unfreeze_from=-1).trainable_stages(0, cut.stage_names) == {"block5", "head"}
    assert cut.net(torch.zeros(2, 3, 32, 32)).shape == (2, NUM_CLASSES)


def test_unknown_stage_is_refused_with_the_backbones_stages() -> None:
    with pytest.raises(ValueError, match=r"unfreeze_from='layer3'.*block1, block2, block3, block4, block5, classifier"):
        Strategy("finetune", unfreeze_from="layer3").check_backbone(backbone("vgg11"))
    with pytest.raises(ValueError, match=r"unfreeze_from=-9: .* has 6 stages"):
        Strategy("finetune", unfreeze_from=-9).check_backbone(backbone("vgg11"))
    with pytest.raises(ValueError, match=r"freeze_layers=999: resnet18 has 40 parameterised layers"):
        Strategy("finetune", freeze_layers=999).check_backbone(backbone("resnet18"))


def test_freeze_layers_counts_parameterised_layers_in_forward_order() -> None:
    record = build_backbone("resnet18", NUM_CLASSES)
    layers = record.layers()
    assert len(layers) == 40 and layers[0] is record.net.conv1 and layers[1] is record.net.bn1
    record.net.train()
    apply_strategy(record, Strategy("finetune", freeze_layers=2), epoch=0)
    assert not record.net.conv1.weight.requires_grad and not record.net.bn1.weight.requires_grad
    assert not record.net.bn1.training  # a frozen BatchNorm is in eval mode even inside a training stage
    assert record.net.layer1[0].conv1.weight.requires_grad and record.net.layer1[0].bn1.training
    assert Strategy("finetune", freeze_layers=0.5).frozen_layers(40) == 20


def test_flowers_recipe_fraction_on_inception_resnet_v2() -> None:
    """Keras' 700 of 782 layers is 89.5%; here the first 401 of 448 layers, exactly the stages before repeat_2.5."""
    record = backbone("timm/inception_resnet_v2")
    layers = record.layers()
    names = {id(m): n for n, m in record.net.named_modules()}
    assert len(layers) == 448
    assert Strategy("finetune", freeze_layers=0.895).frozen_layers(len(layers)) == 401
    assert names[id(layers[401])].startswith("repeat_2.5.")


def test_weights_file_round_trip_for_every_family(tmp_path: Path) -> None:
    for name in ("vgg11", "efficientnet_b0", "timm/test_vit", "timm/test_convnext"):
        record = backbone(name)
        source = {k: v + 1 if v.is_floating_point() else v for k, v in record.net.state_dict().items()}
        path = tmp_path / f"{name.replace('/', '_')}.pth"
        torch.save(source, path)
        head_before = {k: v.clone() for k, v in record.head.state_dict().items()}
        load_backbone_weights(record, str(path))
        head_prefix = record.head_prefix()
        for key, value in record.net.state_dict().items():
            if not key.startswith(head_prefix):
                assert torch.equal(value, source[key]), key
        assert all(torch.equal(v, record.head.state_dict()[k]) for k, v in head_before.items())


def test_transferlab_checkpoint_backbone_is_reused(tmp_path: Path) -> None:
    trained = build_backbone("timm/test_resnet", num_classes=5, hidden_dim=8)
    state = {f"net.{k}": v for k, v in trained.net.state_dict().items()}
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": state, "hyper_parameters": {"class_names": list("abcde")}}, path)
    record = build_backbone("timm/test_resnet", num_classes=2)
    load_backbone_weights(record, str(path))
    key = next(iter(record.net.state_dict()))
    assert torch.equal(record.net.state_dict()[key], trained.net.state_dict()[key])
    assert record.head[-1].out_features == 2


def test_resnet_state_dict_keys_are_torchvisions(weights_file: Path) -> None:
    """Old checkpoints keep loading: net.fc.*, net.layer1.* as before."""
    source = torch.load(weights_file, weights_only=True)
    record = build_backbone("resnet18", num_classes=3)
    keys = set(record.net.state_dict())
    assert {k for k in source if not k.startswith("fc.")} <= keys
    assert {"fc.0.weight", "fc.0.bias"} <= keys
    load_backbone_weights(record, str(weights_file))
    assert torch.equal(record.net.layer4[1].conv2.weight, source["layer4.1.conv2.weight"])
    assert torch.equal(record.net.bn1.running_mean, source["bn1.running_mean"])


def test_weights_of_another_architecture_are_refused(weights_file: Path) -> None:
    with pytest.raises(ValueError, match=r"does not fit backbone 'resnet34'"):
        load_backbone_weights(build_backbone("resnet34", num_classes=3), str(weights_file))


def test_missing_weights_file_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"model.weights=.*nope.pth"):
        read_state_dict_file(tmp_path / "nope.pth")


def test_imagenet_weights_come_through_torchvision_download(monkeypatch: pytest.MonkeyPatch) -> None:
    reference = resnet18().state_dict()
    requested = []

    def fake_download(url: str, *args, **kwargs):
        requested.append(url)
        return reference

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", fake_download)
    record = build_backbone("resnet18", num_classes=4)
    load_backbone_weights(record, "imagenet")
    assert requested == [torchvision.models.ResNet18_Weights.DEFAULT.url]
    assert torch.equal(record.net.conv1.weight, reference["conv1.weight"])


def test_imagenet_weights_come_through_timm_with_the_same_build(monkeypatch: pytest.MonkeyPatch) -> None:
    record = backbone("timm/test_vit")  # built with img_size=32: the pretrained model must be built so too
    reference = {k: torch.full_like(v, 0.5) for k, v in record.net.state_dict().items() if not k.startswith("head.")}
    reference["head.weight"], reference["head.bias"] = torch.zeros(1000, 64), torch.zeros(1000)
    requested = []

    def fake_hub(hub_id, *args, **kwargs):
        requested.append(hub_id)
        return reference

    monkeypatch.setattr(timm.models._builder, "load_state_dict_from_hf", fake_hub)
    load_backbone_weights(record, "imagenet")
    assert requested == ["timm/test_vit.r160_in1k"]
    assert torch.equal(record.net.pos_embed, reference["pos_embed"])


@pytest.mark.parametrize(
    ("name", "patch", "expected"),
    [
        ("resnet50", (torchvision.models._api, "load_state_dict_from_url"), ["hub/checkpoints", "resnet50-"]),
        ("timm/test_vit", (timm.models._builder, "load_state_dict_from_hf"), ["models--timm--test_vit.r160_in1k"]),
    ],
)
def test_offline_download_names_the_file_and_cache_folder(
    name: str, patch: tuple, expected: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(*patch, offline)
    with pytest.raises(RuntimeError) as error:
        load_backbone_weights(backbone(name) if name in FORWARD else build_backbone(name, 3), "imagenet")
    message = str(error.value)
    for part in [*expected, "model.weights=", "strategy=scratch"]:
        assert part in message


def test_preprocessing_comes_from_the_weights() -> None:
    transforms = torchvision.models.ResNet18_Weights.DEFAULT.transforms()
    resnet = backbone_preprocessing("resnet18")
    assert resnet.mean == tuple(transforms.mean) and resnet.std == tuple(transforms.std)
    assert resnet.image_size == 224 and resnet.resize_ratio == pytest.approx(224 / 256)
    inception = backbone_preprocessing("inception_v3")
    assert inception.image_size == 299 and inception.resize_ratio == pytest.approx(299 / 342, abs=1e-4)
    irv2 = backbone_preprocessing("timm/inception_resnet_v2").to_dict()
    assert irv2 == {
        "image_size": 299,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
        "resize_ratio": pytest.approx(0.8975),
        "interpolation": "bicubic",
    }
    assert backbone_preprocessing("efficientnet_b0").interpolation == "bicubic"
    assert backbone_preprocessing("timm/inception_resnet_v2", image_size=160).image_size == 160


def test_an_image_size_the_model_cannot_take_is_refused() -> None:
    with pytest.raises(ValueError, match=r"data.image_size=64: vit_b_16 takes 224 px inputs only.*data.image_size=224"):
        backbone_preprocessing("vit_b_16", image_size=64)
    with pytest.raises(ValueError, match=r"data.image_size=50: inception_v3 needs inputs of at least 75 px"):
        backbone_preprocessing("inception_v3", image_size=50)
    assert backbone("timm/test_vit").net(torch.zeros(1, 3, 32, 32)).shape == (1, NUM_CLASSES)  # timm resamples


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("resnet5", "resnet50"),
        ("inception_resnet_v2", "timm/inception_resnet_v2"),
        ("timm/convnext_tiny.fb_in99k", "timm/convnext_tiny.fb_in22k"),
        ("vgg61", "vgg16"),
    ],
)
def test_unknown_name_lists_close_matches(name: str, suggestion: str) -> None:
    pattern = r"model.backbone=.*Did you mean: .*" + suggestion.replace(".", r"\.")
    with pytest.raises(ValueError, match=pattern) as error:
        check_backbone_name(name)
    assert "python -m transferlab.backbones --list" in str(error.value)


def test_listing_covers_torchvision_and_timm() -> None:
    names = available_backbones()
    assert {"resnet18", "vgg16", "efficientnet_b0", "convnext_tiny", "vit_b_16", "timm/inception_resnet_v2"} <= set(
        names
    )
    printed: list[str] = []
    main(["--list", "vgg16*"], print_=printed.append)
    assert {"vgg16", "vgg16_bn", "timm/vgg16", "timm/vgg16_bn"} <= set(printed)
    assert not any("resnet" in line for line in printed)


def test_frozen_batchnorm_everywhere_is_read_off_its_parameters() -> None:
    record = backbone("densenet121")
    record.net.train()
    set_trainable_stages(record, {"block4", "head"})
    frozen = [m for s in record.stages[:-1] for mod in s.modules for m in mod.modules()]
    batchnorms = [m for m in frozen if isinstance(m, _BatchNorm)]
    assert batchnorms and not any(bn.training for bn in batchnorms)
    record.net.train()
    hold_frozen(record)
    assert not any(bn.training for bn in batchnorms)
    assert all(m.training for mod in record.stages[-1].modules for m in mod.modules())


def test_every_torchvision_family_has_a_representative_here() -> None:
    """Each row of torchvision_families.FAMILIES is exercised by one name of FORWARD or STRUCTURE_ONLY: a family added
    to the table without a test model fails here (timm's own tests run over list_models(); ours are hand lists)."""
    import typing

    from torchvision.models import get_model_builder, list_models

    # The class each builder returns, from its annotation: no network is built.
    names = [name for name in [*FORWARD, *STRUCTURE_ONLY] if name in list_models()]
    tested = {typing.get_type_hints(get_model_builder(name))["return"] for name in names}
    families = {family for family, _ in torchvision_families.FAMILIES}
    missing = sorted(family.__name__ for family in families if not any(issubclass(t, family) for t in tested))
    assert not missing, f"torchvision families without a test model in FORWARD or STRUCTURE_ONLY: {missing}"


def test_a_torchvision_backbone_never_imports_timm() -> None:
    # timm costs about 1.2 s of start-up: only a timm backbone (or a listing of timm's models) may pay it.
    script = """
import sys
from transferlab.backbones.builder import backbone_preprocessing, build_backbone, check_backbone_name
check_backbone_name("resnet18")
build_backbone("resnet18", num_classes=3)
backbone_preprocessing("resnet18")
assert "timm" not in sys.modules, "timm imported for a torchvision backbone"
build_backbone("timm/test_resnet", num_classes=3)
assert "timm" in sys.modules
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]

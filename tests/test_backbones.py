"""Building ResNets by name, the new head, and loading weights from ImageNet, a file or a checkpoint."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision.models._api
from torchvision.models import resnet18

from transferlab.backbones import (
    available_backbones,
    build_network,
    load_backbone_weights,
    normalization,
    read_state_dict_file,
    stage_modules,
)


def test_resnet_family_is_available() -> None:
    names = available_backbones()
    assert {"resnet18", "resnet50", "resnet152", "resnext50_32x4d", "wide_resnet50_2"} <= set(names)
    assert not any(name.startswith(("vit", "efficientnet")) for name in names)


def test_unknown_backbone_lists_the_choices() -> None:
    with pytest.raises(ValueError, match=r"model.backbone='resnet7'.*resnet18.*resnet50"):
        build_network("resnet7", num_classes=3)


@pytest.mark.parametrize(("backbone", "in_features"), [("resnet18", 512), ("resnet50", 2048)])
def test_head_is_sized_from_fc_in_features(backbone: str, in_features: int) -> None:
    net = build_network(backbone, num_classes=7, hidden_dim=32, dropout=0.5)
    linear_layers = [m for m in net.fc.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear_layers] == [(in_features, 32), (32, 7)]
    assert any(isinstance(m, torch.nn.Dropout) and m.p == 0.5 for m in net.fc.modules())
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 7)


def test_stages_cover_every_parameter_once() -> None:
    net = build_network("resnet18", num_classes=3)
    staged = [p for modules in stage_modules(net).values() for m in modules for p in m.parameters()]
    assert len(staged) == len(list(net.parameters()))
    assert {id(p) for p in staged} == {id(p) for p in net.parameters()}


def test_weights_file_loads_backbone_and_keeps_new_head(weights_file: Path) -> None:
    source = torch.load(weights_file, weights_only=True)
    net = build_network("resnet18", num_classes=3)
    head_before = net.fc[-1].weight.clone()
    load_backbone_weights(net, "resnet18", str(weights_file))
    assert torch.equal(net.layer4[1].conv2.weight, source["layer4.1.conv2.weight"])
    assert torch.equal(net.bn1.running_mean, source["bn1.running_mean"])
    assert torch.equal(net.fc[-1].weight, head_before)


def test_transferlab_checkpoint_backbone_is_reused(tmp_path: Path) -> None:
    trained = build_network("resnet18", num_classes=5)
    state = {f"net.{k}": v for k, v in trained.state_dict().items()}
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": state, "hyper_parameters": {"class_names": list("abcde")}}, path)
    net = build_network("resnet18", num_classes=2)
    load_backbone_weights(net, "resnet18", str(path))
    assert torch.equal(net.layer1[0].conv1.weight, trained.layer1[0].conv1.weight)
    assert net.fc[-1].out_features == 2


def test_weights_of_another_architecture_are_refused(weights_file: Path) -> None:
    net = build_network("resnet34", num_classes=3)
    with pytest.raises(ValueError, match=r"does not fit backbone 'resnet34'"):
        load_backbone_weights(net, "resnet34", str(weights_file))


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
    net = build_network("resnet18", num_classes=4)
    load_backbone_weights(net, "resnet18", "imagenet")
    assert requested == [torchvision.models.ResNet18_Weights.DEFAULT.url]
    assert torch.equal(net.conv1.weight, reference["conv1.weight"])


def test_offline_imagenet_download_says_how_to_work_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(url: str, *args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", offline)
    net = build_network("resnet50", num_classes=4)
    with pytest.raises(RuntimeError) as error:
        load_backbone_weights(net, "resnet50", "imagenet")
    message = str(error.value)
    assert "hub/checkpoints" in message
    assert "model.weights=" in message
    assert "strategy=scratch" in message
    assert "resnet50-" in message  # the file name to put there


def test_normalization_comes_from_the_weights() -> None:
    mean, std = normalization("resnet18", "imagenet")
    transforms = torchvision.models.ResNet18_Weights.DEFAULT.transforms()
    assert mean == tuple(transforms.mean)
    assert std == tuple(transforms.std)

"""ONNX export parity for one model of each family: the exported network's logits match PyTorch's, batch dynamic.

export.py exports ``ImageClassifier.net`` whatever the family; here each family's network goes through the same
``export_onnx`` / ``run_onnx`` at 32 px (the smallest variants; VGG without its 120M-parameter fc6/fc7).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.models.vision_transformer import VisionTransformer

from transferlab.backbones import torchvision_families
from transferlab.backbones.builder import backbone_from, build_backbone, build_head
from transferlab.commands.export import export_onnx, run_onnx

FAMILIES = {
    "resnet18": {},
    "vgg11": {"classifier_hidden": False},
    "mobilenet_v3_small": {},
    "efficientnet_b0": {},
    "convnext_tiny": {},
    "tiny_vit": {},
    "timm/test_vit": {"image_size": 32},
}


def network(name: str, **kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    if name == "tiny_vit":  # torchvision's VisionTransformer (vit_b_16's class) at 32 px, 2 blocks
        model = VisionTransformer(image_size=32, patch_size=16, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64)
        make_head = functools.partial(build_head, num_classes=3, hidden_dim=None, dropout=0.0)
        return backbone_from("vit_b_16", torchvision_families.adapt(model, make_head)).net
    return build_backbone(name, 3, hidden_dim=16, dropout=0.5, **kwargs).net


@pytest.mark.parametrize("name", FAMILIES)
def test_onnx_logits_match_pytorch(name: str, tmp_path: Path) -> None:
    net = network(name, **FAMILIES[name]).eval()
    generator = torch.Generator().manual_seed(0)
    example, check = torch.randn(2, 3, 32, 32, generator=generator), torch.randn(3, 3, 32, 32, generator=generator)
    path = tmp_path / "model.onnx"
    export_onnx(net, example, path, opset=None)
    with torch.no_grad():
        expected = net(check).numpy()
    np.testing.assert_allclose(run_onnx(path, check), expected, atol=1e-4, rtol=1e-4)

"""torchvision classifiers as backbones: one table row per family saying where its classifier is and how it splits
into stages, input to output.

| family | stages | replaced by the head |
|---|---|---|
| ResNet, ResNeXt, Wide-ResNet | ``stem``, ``layer1`` … ``layer4`` | ``fc`` |
| VGG, AlexNet | ``block1`` … (split after each max-pool), ``classifier`` (fc6, fc7) | ``classifier[6]`` |
| SqueezeNet | ``block1`` … (split after each max-pool) | the final 1×1 conv (a pooled linear head instead) |
| DenseNet | ``stem``, ``block1`` … ``block4`` (dense block + transition) | ``classifier`` |
| Inception v3 | ``stem``, ``mixed5``, ``mixed6``, ``mixed7`` (no auxiliary head) | ``fc`` |
| GoogLeNet | ``stem``, ``inception3``, ``inception4``, ``inception5`` (no auxiliary heads) | ``fc`` |
| ShuffleNet v2 | ``stem``, ``stage2``, ``stage3``, ``stage4`` (+ conv5) | ``fc`` |
| RegNet | ``stem``, ``block1`` … ``block4`` | ``fc`` |
| EfficientNet, MobileNet, MNASNet | ``stem``, ``stage1`` … (at each downsampling) [, ``classifier``] | ``Linear`` |
| ConvNeXt | ``stem``, ``stage1`` … ``stage4`` (+ the final norm) | ``classifier[2]`` |
| Swin | ``patch_embed``, ``stage1`` … ``stage4``, ``norm`` | ``head`` |
| ViT | ``patch_embed`` (+ class token, position embedding), ``blocks1`` … ``blocks4``, ``norm`` | ``heads.head`` |
| MaxViT | ``stem``, ``block1`` … ``block4``, ``classifier`` (norm, pre-logits) | ``classifier[5]`` |

The stages are given as parameter-name prefixes; ``record.assign_stages`` turns them into modules. The rows
are written in the moves of ``torchvision_surgery`` (replace a classifier's Linear, split a trunk). Also here: the
names torchvision lists, and what a model's DEFAULT weights say (preprocessing, input sizes) and hold.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import torchvision.models
from torch import nn
from torchvision.models import (
    VGG,
    AlexNet,
    ConvNeXt,
    DenseNet,
    EfficientNet,
    GoogLeNet,
    Inception3,
    MaxVit,
    MNASNet,
    MobileNetV2,
    MobileNetV3,
    RegNet,
    ResNet,
    ShuffleNetV2,
    SqueezeNet,
    SwinTransformer,
    VisionTransformer,
    get_model,
    get_model_weights,
    list_models,
)

from transferlab.backbones.torchvision_surgery import (
    MakeHead,
    Stages,
    even_groups,
    replace_first_linear,
    replace_last_linear,
    replace_linear,
    split_after_pools,
    split_at_downsampling,
    stem_and_downsampled_stages,
)
from transferlab.data.preprocessing import Preprocessing

# Built as the DEFAULT weights build them, so that those weights (or a file derived from them) fit: no auxiliary
# heads (they would return a tuple in training), and Inception's input re-normalisation that its weights expect.
ARCHITECTURE_KWARGS: dict[str, dict[str, Any]] = {
    "inception_v3": {"aux_logits": False, "transform_input": True, "init_weights": True},
    "googlenet": {"aux_logits": False, "transform_input": True, "init_weights": True},
}

# Families built for one input size: a fixed patch grid and position embedding (ViT), fixed window partitions (MaxViT).
FIXED_SIZE = (VisionTransformer, MaxVit)


def names() -> list[str]:
    return sorted(list_models(module=torchvision.models))


def build(name: str, make_head: MakeHead, *, classifier_hidden: bool = True) -> dict[str, Any]:
    kwargs = dict(ARCHITECTURE_KWARGS.get(name, {}))
    if name.startswith("vit_"):  # ViT-H/14's default weights are SWAG at 518 px; the builder sizes from them
        kwargs["image_size"] = _default_weights(name).meta["min_size"][0]
    return adapt(get_model(name, weights=None, **kwargs), make_head, classifier_hidden=classifier_hidden)


def adapt(model: nn.Module, make_head: MakeHead, *, classifier_hidden: bool = True) -> dict[str, Any]:
    """Replace the classifier of a torchvision model (any instance of a family below) and name its stages."""
    for family, adapter in FAMILIES:
        if isinstance(model, family):
            head, num_features, stages = adapter(model, make_head, classifier_hidden)
            return {"net": model, "head": head, "num_features": num_features, "stages": stages}
    raise ValueError(f"{type(model).__name__} is not a torchvision classifier family transferlab knows")


def _resnet(m: ResNet, make_head: MakeHead, hidden: bool) -> tuple[nn.Module, int, Stages]:
    head, width = replace_linear(m, "fc", make_head)
    return head, width, [("stem", ["conv1", "bn1"]), *((f"layer{i}", [f"layer{i}"]) for i in range(1, 5))]


def _vgg(m: VGG | AlexNet, make_head: MakeHead, hidden: bool) -> tuple[nn.Module, int, Stages]:
    stages = split_after_pools(m.features, "features", "block")
    if hidden:
        head, width, classifier = replace_last_linear(m, "classifier", make_head)
        return head, width, [*stages, ("classifier", classifier)]
    # Keras' include_top=False: the conv base, globally pooled, under the new head.
    width = [c for c in m.features.modules() if isinstance(c, nn.Conv2d)][-1].out_channels
    m.avgpool = nn.AdaptiveAvgPool2d(1)
    m.classifier = head = make_head(width)
    return head, width, stages


def _squeezenet(m: SqueezeNet, make_head: MakeHead, hidden: bool) -> tuple[nn.Module, int, Stages]:
    width = m.classifier[1].in_channels  # its classifier is a 1x1 conv to 1000 maps, averaged
    head = make_head(width)
    m.classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), head)
    return head, width, split_after_pools(m.features, "features", "block")


def _densenet(m: DenseNet, make_head: MakeHead, hidden: bool) -> tuple[nn.Module, int, Stages]:
    head, width = replace_linear(m, "classifier", make_head)
    stages = [("stem", ["features.conv0", "features.norm0"])]
    stages += [(f"block{i}", [f"features.denseblock{i}", f"features.transition{i}"]) for i in range(1, 4)]
    stages.append(("block4", ["features.denseblock4", "features.norm5"]))
    return head, width, stages


def _inception3(m: Inception3, make_head: MakeHead, hidden: bool) -> tuple[nn.Module, int, Stages]:
    head, width = replace_linear(m, "fc", make_head)
    stem = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3"]
    return (
        head,
        width,
        [
            ("stem", stem),
            ("mixed5", ["Mixed_5b", "Mixed_5c", "Mixed_5d"]),
            ("mixed6", ["Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"]),
            ("mixed7", ["Mixed_7a", "Mixed_7b", "Mixed_7c"]),
        ],
    )


def _googlenet(m: GoogLeNet, make_head: MakeHead, hidden: bool) -> tuple[nn.Module, int, Stages]:
    head, width = replace_linear(m, "fc", make_head)
    return (
        head,
        width,
        [
            ("stem", ["conv1", "conv2", "conv3"]),
            ("inception3", ["inception3a", "inception3b"]),
            ("inception4", [f"inception4{c}" for c in "abcde"]),
            ("inception5", ["inception5a", "inception5b"]),
        ],
    )


def _shufflenet(m: ShuffleNetV2, make_head: MakeHead, hidden: bool) -> tuple[nn.Module, int, Stages]:
    head, width = replace_linear(m, "fc", make_head)
    return (
        head,
        width,
        [("stem", ["conv1"]), ("stage2", ["stage2"]), ("stage3", ["stage3"]), ("stage4", ["stage4", "conv5"])],
    )


def _regnet(m: RegNet, make_head: MakeHead, hidden: bool) -> tuple[nn.Module, int, Stages]:
    head, width = replace_linear(m, "fc", make_head)
    return head, width, [("stem", ["stem"]), *((f"block{i}", [f"trunk_output.block{i}"]) for i in range(1, 5))]


def _mobile(m: nn.Module, make_head: MakeHead, hidden: bool) -> tuple[nn.Module, int, Stages]:
    """EfficientNet, MobileNet v2/v3, MNASNet: a flat sequence of blocks, split where the resolution halves."""
    trunk = "layers" if isinstance(m, MNASNet) else "features"
    stages = split_at_downsampling(getattr(m, trunk), trunk)
    if hidden:
        head, width, classifier = replace_last_linear(m, "classifier", make_head)
    else:
        head, width, classifier = replace_first_linear(m, "classifier", make_head)
    if classifier:  # MobileNetV3's 960 → 1280 pre-logits layer
        stages.append(("classifier", classifier))
    return head, width, stages


def _convnext(m: ConvNeXt, make_head: MakeHead, hidden: bool) -> tuple[nn.Module, int, Stages]:
    head, width, norm = replace_last_linear(m, "classifier", make_head)
    stages = stem_and_downsampled_stages(m.features, "features", "stem")
    stages[-1][1].extend(norm)  # the final LayerNorm2d closes the last stage, as in timm's ConvNeXt
    return head, width, stages


def _swin(m: SwinTransformer, make_head: MakeHead, hidden: bool) -> tuple[nn.Module, int, Stages]:
    head, width = replace_linear(m, "head", make_head)
    return head, width, [*stem_and_downsampled_stages(m.features, "features", "patch_embed"), ("norm", ["norm"])]


def _vit(m: VisionTransformer, make_head: MakeHead, hidden: bool) -> tuple[nn.Module, int, Stages]:
    head, width, pre_logits = replace_last_linear(m, "heads", make_head)
    blocks = [f"encoder.layers.{name}" for name, _ in m.encoder.layers.named_children()]
    stages = [("patch_embed", ["conv_proj", "class_token", "encoder.pos_embedding"])]
    stages += [(f"blocks{i + 1}", group) for i, group in enumerate(even_groups(blocks, 4))]
    stages.append(("norm", ["encoder.ln"]))
    if pre_logits:  # only ViTs built with representation_size have one
        stages.append(("classifier", pre_logits))
    return head, width, stages


def _maxvit(m: MaxVit, make_head: MakeHead, hidden: bool) -> tuple[nn.Module, int, Stages]:
    replace = replace_last_linear if hidden else replace_first_linear
    head, width, classifier = replace(m, "classifier", make_head)
    blocks = [(f"block{i + 1}", [f"blocks.{i}"]) for i in range(len(m.blocks))]
    return head, width, [("stem", ["stem"]), *blocks, ("classifier", classifier)]


FAMILIES: list[tuple[type, Callable[[Any, MakeHead, bool], tuple[nn.Module, int, Stages]]]] = [
    (ResNet, _resnet),
    (VGG, _vgg),
    (AlexNet, _vgg),
    (SqueezeNet, _squeezenet),
    (DenseNet, _densenet),
    (Inception3, _inception3),
    (GoogLeNet, _googlenet),
    (ShuffleNetV2, _shufflenet),
    (RegNet, _regnet),
    (EfficientNet, _mobile),
    (MobileNetV2, _mobile),
    (MobileNetV3, _mobile),
    (MNASNet, _mobile),
    (ConvNeXt, _convnext),
    (SwinTransformer, _swin),
    (VisionTransformer, _vit),
    (MaxVit, _maxvit),
]


# ---------------------------------------------------------------------------------------------------------------
# Weights and their metadata


def _default_weights(name: str) -> Any:
    return get_model_weights(name).DEFAULT


def preprocessing(name: str) -> Preprocessing:
    """The DEFAULT weights' eval transform, read from torchvision's weight enum (no download)."""
    transform = _default_weights(name).transforms()
    crop, resize = transform.crop_size[0], transform.resize_size[0]
    return Preprocessing(
        image_size=int(crop),
        mean=tuple(transform.mean),
        std=tuple(transform.std),
        resize_ratio=round(crop / resize, 4),
        interpolation=transform.interpolation.value,
    )


def allowed_sizes(name: str) -> tuple[int | None, int | None]:
    """(the only size, or None; the smallest size, or None) that the architecture takes."""
    meta = _default_weights(name).meta
    if name.startswith(("vit_", "maxvit")):
        return meta["min_size"][0], None
    return None, meta.get("min_size", (None,))[0]


def pretrained_state_dict(name: str) -> Mapping[str, torch.Tensor]:
    """torchvision's DEFAULT weights, downloaded on first use into ``$TORCH_HOME/hub/checkpoints``."""
    weights = _default_weights(name)
    try:
        return weights.get_state_dict(progress=True, check_hash=True)
    except (OSError, RuntimeError) as error:  # URLError is an OSError; a truncated download a RuntimeError
        cache = Path(torch.hub.get_dir()) / "checkpoints"
        raise RuntimeError(
            f"Could not download ImageNet weights for {name} from {weights.url} ({error}).\n"
            f"Offline? Put the file {Path(weights.url).name} into {cache} "
            f"(that is $TORCH_HOME/hub/checkpoints; TORCH_HOME={os.environ.get('TORCH_HOME', '~/.cache/torch')}),"
            " or pass model.weights=/path/to/weights.pth, or train without pretrained weights with "
            "strategy=scratch."
        ) from error

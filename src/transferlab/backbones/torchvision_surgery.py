"""The moves that the torchvision family table (``torchvision_families``) is written in: put transferlab's head in
place of a classifier's ``nn.Linear`` (the attribute itself, the last Linear of a Sequential, or a cut before its
first), and split a Sequential trunk into stages as parameter-name prefixes (after each max-pool, at each
downsampling block, a stem then [downsample, blocks] pairs, even groups of blocks).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

MakeHead = Callable[[int], nn.Module]
Stages = list[tuple[str, list[str]]]


def replace_linear(model: nn.Module, attr: str, make_head: MakeHead) -> tuple[nn.Module, int]:
    """Replace the ``nn.Linear`` at ``model.<attr>`` by a head of its input width."""
    linear = getattr(model, attr)
    head = make_head(linear.in_features)
    setattr(model, attr, head)
    return head, linear.in_features


def replace_last_linear(model: nn.Module, attr: str, make_head: MakeHead) -> tuple[nn.Module, int, list[str]]:
    """Replace the last ``nn.Linear`` of the ``nn.Sequential`` at ``model.<attr>`` (its index, so its key, stays);
    return the prefixes of the parameterised layers before it, which stay pretrained."""
    container = getattr(model, attr)
    children = list(container.named_children())
    last = max(i for i, (_, child) in enumerate(children) if isinstance(child, nn.Linear))
    width = children[last][1].in_features
    head = make_head(width)
    setattr(container, children[last][0], head)
    kept = [f"{attr}.{name}" for name, child in children[:last] if next(child.parameters(), None) is not None]
    return head, width, kept


def replace_first_linear(model: nn.Module, attr: str, make_head: MakeHead) -> tuple[nn.Module, int, list[str]]:
    """Cut the ``nn.Sequential`` at ``model.<attr>`` before its first ``nn.Linear``: hidden layers go, the head takes
    the pooled features (layers before that Linear, e.g. a norm, stay)."""
    children = list(getattr(model, attr).named_children())
    first = min(i for i, (_, child) in enumerate(children) if isinstance(child, nn.Linear))
    width = children[first][1].in_features
    head = make_head(width)
    setattr(model, attr, nn.Sequential(*(child for _, child in children[:first]), head))
    kept = [
        f"{attr}.{i}" for i, (_, child) in enumerate(children[:first]) if next(child.parameters(), None) is not None
    ]
    return head, width, kept


def split_after_pools(features: nn.Sequential, prefix: str, name: str) -> Stages:
    """VGG-style: a block ends with each max-pool."""
    groups: list[list[str]] = [[]]
    for index, layer in enumerate(features):
        if next(layer.parameters(), None) is not None:
            groups[-1].append(f"{prefix}.{index}")
        if isinstance(layer, nn.MaxPool2d) and groups[-1]:
            groups.append([])
    return [(f"{name}{i + 1}", group) for i, group in enumerate(g for g in groups if g)]


def _downsamples(block: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) and max(m.stride) > 1 for m in block.modules())


def split_at_downsampling(features: nn.Sequential, prefix: str) -> Stages:
    """A new stage at each block that halves the resolution; the first is the stem (as timm's feature_info)."""
    groups: list[list[str]] = []
    for index, block in enumerate(features):
        if not groups or (_downsamples(block) and groups[-1]):
            groups.append([])
        if next(block.parameters(), None) is not None:
            groups[-1].append(f"{prefix}.{index}")
    return [("stem" if i == 0 else f"stage{i}", group) for i, group in enumerate(groups)]


def stem_and_downsampled_stages(features: nn.Sequential, prefix: str, stem: str) -> Stages:
    """ConvNeXt and Swin: ``features[0]`` is the stem, then [downsample,] blocks per stage."""
    stages: Stages = [(stem, [f"{prefix}.0"]), ("stage1", [f"{prefix}.1"])]
    for index in range(2, len(features), 2):
        stages.append((f"stage{len(stages)}", [f"{prefix}.{index}", f"{prefix}.{index + 1}"]))
    return stages


def even_groups(items: Sequence[str], count: int) -> list[list[str]]:
    count = min(count, len(items))
    bounds = [round(i * len(items) / count) for i in range(count + 1)]
    return [list(items[bounds[i] : bounds[i + 1]]) for i in range(count)]

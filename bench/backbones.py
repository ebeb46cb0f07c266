"""Backbones side by side: parameters, trainable parameters under each strategy, and CPU images/s of one training
step (forward, backward, SGD step) at 64 px, batch 16, for the backbones of conf/model/.

    python bench/backbones.py [--steps 3] [--quick]

Prints the README's Backbones table (markdown). Random weights (speed does not depend on them); 10 classes. The
feature-extraction step runs the frozen backbone in eval mode without gradients into it, as a run does.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from transferlab.backbones.builder import build_backbone
from transferlab.training.finetuning import Strategy, apply_strategy
from transferlab.training.param_groups import build_param_groups

BACKBONES = {  # name: input size (InceptionResNetV2 needs at least 75 px)
    "resnet50": 64,
    "vgg16": 64,
    "efficientnet_b0": 64,
    "mobilenet_v3_large": 64,
    "convnext_tiny": 64,
    "timm/inception_resnet_v2": 75,
}
STRATEGIES = {
    "scratch": Strategy("scratch"),
    "feature_extraction": Strategy("feature_extraction"),
    "finetune -1": Strategy("finetune", unfreeze_from=-1),
}


def images_per_second(name: str, size: int, strategy: Strategy, steps: int, batch: int = 16) -> float:
    backbone = build_backbone(name, 10)
    backbone.net.train()
    apply_strategy(backbone, strategy, epoch=0)
    optimizer = torch.optim.SGD(build_param_groups(backbone, strategy, lr=0.01), lr=0.01, momentum=0.9)
    x, y = torch.randn(batch, 3, size, size), torch.randint(0, 10, (batch,))
    timings = []
    for _ in range(steps + 1):  # the first step warms up (allocations, kernel choice)
        started = time.perf_counter()
        optimizer.zero_grad()
        F.cross_entropy(backbone.net(x), y).backward()
        optimizer.step()
        timings.append(time.perf_counter() - started)
    return batch / min(timings[1:])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a smoke run: two backbones, one timed step")
    args = parser.parse_args()
    backbones = dict(list(BACKBONES.items())[:2]) if args.quick else BACKBONES
    steps = 1 if args.quick else args.steps
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(
        "| backbone | parameters | trainable: scratch / feature_extraction / finetune -1 | "
        "img/s scratch | img/s feature_extraction |"
    )
    print("|---|---:|---|---:|---:|")
    for name, size in backbones.items():
        trainable = []
        for strategy in STRATEGIES.values():
            backbone = build_backbone(name, 10)
            apply_strategy(backbone, strategy, epoch=0)
            trainable.append(sum(p.numel() for p in backbone.net.parameters() if p.requires_grad))
        total = sum(p.numel() for p in backbone.net.parameters())
        scratch = images_per_second(name, size, STRATEGIES["scratch"], steps)
        frozen = images_per_second(name, size, STRATEGIES["feature_extraction"], steps)
        note = "" if size == 64 else f" ({size} px)"
        print(
            f"| `{name}`{note} | {total / 1e6:.1f} M | "
            + " / ".join(f"{t / 1e6:.2f} M" for t in trainable)
            + f" | {scratch:.0f} | {frozen:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()

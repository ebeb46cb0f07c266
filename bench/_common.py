"""Shared by the benchmarks: synthetic data, argument parsing and the printed table (the epoch timer, which
needs Lightning, is in ``_timing.py``, so that the light benchmarks do not import it).

Benchmarks generate their own data: JPEG "photos" (smooth colour fields with fine texture, so that they compress
like photographs, not like flat colour or noise) in class folders.
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

# Benchmarks import the package from the source tree, without installing it.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np
from PIL import Image

# The normalisation a hand-written notebook hard-codes (torchvision's ImageNet statistics).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def parse_args(description: str, **extra: tuple[type, object, str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that the benchmark runs (smoke test)")
    for name, (kind, default, help_text) in extra.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=default, help=help_text)
    return parser.parse_args()


def photo(width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """A photo-like RGB image: a smooth random colour field upsampled, plus fine grain."""
    coarse = Image.fromarray(rng.integers(0, 256, (max(height // 64, 2), max(width // 64, 2), 3), dtype=np.uint8))
    smooth = np.asarray(coarse.resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16)
    grain = rng.normal(0, 6, (height, width, 1)).astype(np.int16)
    return Image.fromarray(np.clip(smooth + grain, 0, 255).astype(np.uint8))


def make_jpeg_folder(root: Path, *, classes: int, per_class: int, size: tuple[int, int], seed: int = 0) -> Path:
    """``root/class_k/img_i.jpg`` photos of ``size`` (width, height); reused when already there."""
    marker = root / ".complete"
    if marker.is_file():
        return root
    rng = np.random.default_rng(seed)
    for k in range(classes):
        folder = root / f"class_{k}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            photo(*size, rng).save(folder / f"img_{i:05d}.jpg", quality=90)
    marker.touch()
    return root


def steady(seconds: list[float]) -> float:
    """Median epoch time without the first epoch (warm-up: allocator, thread pools, worker start)."""
    return statistics.median(seconds[1:] if len(seconds) > 1 else seconds)


def table(title: str, rows: list[tuple[str, str]]) -> None:
    print(f"\n{title}")
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")

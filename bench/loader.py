"""Benchmark 3, decoding and loading: JPEG decoders on large photos, reduced-size (DCT-scaled) decoding, and the
data loader's throughput with W workers against the single-process rate.

    python bench/loader.py [--quick] [--workers W]

Part 1 decodes large photos (12 MP, 4000×3000, about the 2.4 bits per pixel of a camera JPEG) to RGB arrays with
Pillow as torchvision's ImageFolder loads them, skimage.io and torchvision.io.decode_jpeg, then times transferlab's
read_rgb at full size and with the size hint the eval transform of a 224 px model gives (Pillow's draft mode:
libjpeg decodes at 1/2, 1/4 or 1/8 scale), alone and followed by that eval transform (resize, crop, normalise),
which is what a loader needs. Target: reduced ≥ 3× faster than full.
Part 2 times the training loader (decode + light augmentation + collate; uint8 batches, as training gets them)
over 640×480 photos in batches of 32: one process vs a DataLoader with 1 and with W workers (default: one per
core), passes of the two interleaved, plus W plain processes without a DataLoader (what the machine itself gives W
processes). Target: W workers ≥ 0.8 × W × the single-process rate.
"""

from __future__ import annotations

import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
import torchvision.io
from _common import make_jpeg_folder, parse_args, photo, table
from PIL import Image
from skimage import io as skio

from transferlab.data.datamodule import FolderDataModule
from transferlab.data.images import read_rgb
from transferlab.data.preprocessing import Preprocessing
from transferlab.devices import default_num_workers

AUGMENT = {"random_crop_scale": [0.35, 1.0], "hflip": 0.5, "rot90": 0.0, "color_jitter": 0.0}


def per_image(functions: dict[str, Callable[[Path], object]], paths: list[Path], rounds: int) -> dict[str, float]:
    """Seconds per image of each function: the median of ``rounds`` rounds, each timing one pass over ``paths``
    of every function in turn, so that all of them share the machine's state of the moment."""
    for function in functions.values():
        function(paths[0])  # warm-up: imports, plugin registration
    passes: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(rounds):
        for name, function in functions.items():
            started = time.perf_counter()
            for path in paths:
                function(path)
            passes[name].append((time.perf_counter() - started) / len(paths))
    return {name: statistics.median(seconds) for name, seconds in passes.items()}


def pil_rgb(path: Path) -> np.ndarray:
    """torchvision.datasets.folder.pil_loader (ImageFolder's default loader), as an array."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def torchvision_rgb(path: Path) -> torch.Tensor:
    return torchvision.io.decode_jpeg(torchvision.io.read_file(str(path)), mode=torchvision.io.ImageReadMode.RGB)


def decoders(tmp: Path, quick: bool) -> list[tuple[str, str]]:
    size, count, rounds = ((1600, 1200), 2, 1) if quick else ((4000, 3000), 4, 5)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        paths.append(tmp / f"photo_{i}.jpg")
        photo(*size, rng).save(paths[-1], quality=90)
    preprocessing = Preprocessing(image_size=224)
    side = preprocessing.decode_side()  # what the eval transform of a 224 px model needs: 256
    transform = preprocessing.eval_transform()
    full, reduced = "read_rgb, full size", f"read_rgb(min_side={side}), draft mode"
    functions = {
        "Pillow, as ImageFolder's pil_loader": pil_rgb,
        "skimage.io.imread": skio.imread,
        "torchvision.io.decode_jpeg (CPU)": torchvision_rgb,
        full: read_rgb,
        reduced: lambda p: read_rgb(p, min_side=side),
        f"{full} + eval transform": lambda p: transform(image=read_rgb(p))["image"],
        f"{reduced} + eval transform": lambda p: transform(image=read_rgb(p, min_side=side))["image"],
    }
    rates = per_image(functions, paths, rounds)
    rows = [(name, f"{seconds * 1000:7.1f} ms/image") for name, seconds in rates.items()]
    rows.append(("ratio full / reduced decode", f"{rates[full] / rates[reduced]:.1f}x  (target >= 3x)"))
    rows.append(
        (
            "ratio full / reduced, decode + eval transform",
            f"{rates[f'{full} + eval transform'] / rates[f'{reduced} + eval transform']:.1f}x",
        )
    )
    megapixels = size[0] * size[1] / 1e6
    title = (
        f"Decoding {count} JPEGs of {size[0]}x{size[1]} ({megapixels:.0f} MP, quality 90), median of {rounds} rounds"
    )
    return [(title, ""), *rows]


def epoch_rate(loader) -> float:
    """Images per second of one pass over a loader."""
    seen, started = 0, time.perf_counter()
    for images, _ in loader:
        seen += len(images)
    return seen / (time.perf_counter() - started)


def single_process_rate(dataset) -> float:
    """Images per second of ``dataset[i]`` over the whole dataset in this process, on one thread: one core's rate.

    OpenCV (inside albumentations) and torch would otherwise spread one sample over all cores, while a loader
    worker runs with one thread each (PyTorch sets it; OpenCV's pool is per process).
    """
    threads = cv2.getNumThreads(), torch.get_num_threads()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    try:
        started = time.perf_counter()
        for index in range(len(dataset)):
            dataset[index]
        return len(dataset) / (time.perf_counter() - started)
    finally:
        cv2.setNumThreads(threads[0])
        torch.set_num_threads(threads[1])


def plain_processes_rate(dataset, count: int) -> float:
    """Images per second of `count` forked processes each running `single_process_rate` over the whole dataset at
    once, without a DataLoader: what the machine itself gives `count` workers (its ceiling for the loader)."""
    with multiprocessing.get_context("fork").Pool(count) as pool:
        pool.map(abs, range(count))  # start the processes before the clock
        started = time.perf_counter()
        pool.map(single_process_rate, [dataset] * count, chunksize=1)
        return count * len(dataset) / (time.perf_counter() - started)


def loaders(tmp: Path, quick: bool, workers: int) -> list[tuple[str, str]]:
    # Batches of 32: data.batch_size's default. Fewer, larger batches would hide per-batch costs; smaller, show more.
    per_class, size, image_size, rounds = (16, (160, 120), 64, 1) if quick else (96, (640, 480), 224, 5)
    root = make_jpeg_folder(tmp / "folder", classes=4, per_class=per_class, size=size)
    rows = []
    for count in sorted({1, workers}):
        datamodule = FolderDataModule(
            str(root), image_size=image_size, batch_size=32, num_workers=count, augment=AUGMENT, val_fraction=0.1
        )
        datamodule.setup("fit")
        dataset, loader = datamodule.datasets["train"], datamodule.train_dataloader()
        epoch_rate(loader)  # warm-up: worker start-up (the workers persist), page cache
        single, parallel, plain = [], [], []
        for _ in range(rounds):  # interleaved, so that all sides share the machine's state
            single.append(single_process_rate(dataset))
            parallel.append(epoch_rate(loader))
            if count > 1:
                plain.append(plain_processes_rate(dataset, count))
        single_rate, loader_rate = statistics.median(single), statistics.median(parallel)
        if count == 1:
            rows.append(
                (f"Training loader, {len(dataset)} JPEGs of {size[0]}x{size[1]} -> {image_size} px, light augment", "")
            )
        target = "  (target >= 0.8)" if count == workers else ""
        rows += [
            (f"{count} worker(s): one process, one thread (median of {rounds})", f"{single_rate:7.1f} images/s"),
            (f"{count} worker(s): DataLoader epoch (median of {rounds})", f"{loader_rate:7.1f} images/s"),
            (
                f"{count} worker(s): ratio / ({count} x single process)",
                f"{loader_rate / (count * single_rate):.2f}{target}",
            ),
        ]
        if plain:
            plain_rate = statistics.median(plain)
            rows += [
                (f"{count} plain processes, no DataLoader (the machine's ceiling)", f"{plain_rate:7.1f} images/s"),
                (
                    f"{count} plain processes: ratio / ({count} x single process)",
                    f"{plain_rate / (count * single_rate):.2f}",
                ),
            ]
    return rows


def main() -> None:
    args = parse_args(__doc__.split("\n")[0], workers=(int, default_num_workers(), "loader workers (default: cores)"))
    with tempfile.TemporaryDirectory() as tmp:
        rows = decoders(Path(tmp), args.quick) + loaders(Path(tmp), args.quick, max(args.workers, 1))
    table("Decoding and loading, CPU", rows)


if __name__ == "__main__":
    main()

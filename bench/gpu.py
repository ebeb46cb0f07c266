"""Benchmark 5, GPU training throughput (skips with a message when no CUDA device is present).

    python bench/gpu.py [--quick] [--batch-size 256] [--peak-tflops T]

Part 1, synthetic tensors: ResNet-18 and ResNet-50 training steps (forward, backward, SGD) on random 224 px batches
already on the GPU: fp32 vs bf16 autocast, channels_last off/on, torch.compile off/on; images/s and the fraction of
the GPU's dense bf16 peak (training FLOPs counted by torch.utils.flop_counter; peak from a table of known GPUs or
--peak-tflops). Targets on one H100: ResNet-50 bf16 channels_last ≥ 3,300 images/s eager, ≥ 5,000 compiled.
Part 2, from a JPEG folder: the transferlab loader alone vs a transferlab training run (trainer=gpu settings:
bf16-mixed, channels_last, cudnn.benchmark) fed by it. Target: end to end ≥ 0.9 × the loader alone.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from _common import IMAGENET_MEAN, IMAGENET_STD, make_jpeg_folder, parse_args, table
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models import get_model

# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s, from the vendors' data sheets.
PEAK_BF16_TFLOPS = {
    "H100 SXM": 989.4,
    "H100 NVL": 835.0,
    "H100 PCIe": 756.0,
    "H100": 989.4,
    "H200": 989.4,
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10": 125.0,
    "RTX 4090": 165.2,
    "B200": 2250.0,
}


def peak_tflops(name: str, override: float | None) -> float | None:
    if override:
        return override
    for key in sorted(PEAK_BF16_TFLOPS, key=len, reverse=True):  # "H100 PCIe" before "H100"
        if key in name:
            return PEAK_BF16_TFLOPS[key]
    return None


def train_step_flops(arch: str, batch: int) -> float:
    model = get_model(arch, num_classes=1000).cuda()
    images = torch.randn(batch, 3, 224, 224, device="cuda")
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(images), torch.zeros(batch, dtype=torch.long, device="cuda")).backward()
    return counter.get_total_flops() / batch


def synthetic(arch: str, batch: int, *, bf16: bool, channels_last: bool, compile: bool, steps: int) -> float:
    torch.backends.cudnn.benchmark = True
    model = get_model(arch, num_classes=1000).cuda()
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    forward = torch.compile(model) if compile else model  # what model.compile=true does: the network only
    images = torch.randn(batch, 3, 224, 224, device="cuda").contiguous(memory_format=memory_format)
    labels = torch.randint(0, 1000, (batch,), device="cuda")

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(forward(images), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(5 if not compile else 10):  # warm-up: cudnn.benchmark's search, compilation
        step()
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - started)


def from_jpegs(tmp: Path, quick: bool, batch: int) -> list[tuple[str, str]]:
    # Imported here: without CUDA the benchmark skips before paying for Lightning's import.
    from _timing import EpochTimer
    from pytorch_lightning import Trainer

    from transferlab.data.datamodule import FolderDataModule
    from transferlab.devices import default_num_workers
    from transferlab.launch.resolvers import best_mixed_precision
    from transferlab.training.classifier import ImageClassifier
    from transferlab.training.finetuning import Finetuning

    per_class, size = (16, (320, 240)) if quick else (500, (500, 375))
    root = make_jpeg_folder(tmp / "jpegs", classes=4, per_class=per_class, size=size)
    workers = default_num_workers()
    augment = {"random_crop_scale": [0.35, 1.0], "hflip": 0.5, "rot90": 0.0, "color_jitter": 0.0}
    datamodule = FolderDataModule(
        str(root), image_size=224, batch_size=batch, num_workers=workers, augment=augment, val_fraction=0.05
    )
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    for _ in loader:  # first pass: worker start-up, page cache
        pass
    started, seen = time.perf_counter(), 0
    for images, _ in loader:
        seen += len(images)
    loader_rate = seen / (time.perf_counter() - started)

    model = ImageClassifier(
        backbone="resnet50",
        class_names=datamodule.class_names,
        strategy={"name": "scratch"},
        optimizer={"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1, "momentum": 0.9},
        preprocessing=datamodule.preprocessing.with_normalization(IMAGENET_MEAN, IMAGENET_STD).to_dict(),
    )
    timer = EpochTimer()
    trainer = Trainer(  # conf/trainer/gpu.yaml's settings
        accelerator="gpu",
        devices=1,
        precision=best_mixed_precision(),
        benchmark=True,
        max_epochs=3,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Finetuning(), timer],
    )
    trainer.fit(model, datamodule=datamodule)
    train_images = (len(datamodule.datasets["train"]) // batch) * batch
    end_to_end = train_images / min(timer.seconds[1:])
    return [
        (
            f"From {len(datamodule.datasets['train'])} JPEGs ({size[0]}x{size[1]}), {workers} workers, ResNet-50, "
            f"{best_mixed_precision()}, channels_last",
            "",
        ),
        ("loader alone (decode + augment)", f"{loader_rate:8.0f} images/s"),
        ("transferlab training epoch", f"{end_to_end:8.0f} images/s"),
        ("ratio end to end / loader alone", f"{end_to_end / loader_rate:.2f}  (target >= 0.9 when the GPU is faster)"),
    ]


def main() -> None:
    args = parse_args(
        __doc__.split("\n")[0],
        batch_size=(int, 256, "batch size"),
        peak_tflops=(float, None, "the GPU's dense bf16 peak in TFLOP/s, when not in the table"),
    )
    if not torch.cuda.is_available():
        print("bench/gpu.py: skipped, no CUDA device is available (torch.cuda.is_available() is False)")
        return
    name = torch.cuda.get_device_name()
    peak = peak_tflops(name, args.peak_tflops)
    batch, steps = (32, 3) if args.quick else (args.batch_size, 30)
    rows = []
    for arch in ("resnet18", "resnet50"):
        flops = train_step_flops(arch, 8)
        rows.append((f"{arch}, synthetic 224 px batches of {batch}: {flops / 1e9:.1f} GFLOP per training image", ""))
        configs = [
            (False, False, False),
            (False, True, False),
            (True, False, False),
            (True, True, False),
            (False, True, True),
            (True, True, True),
        ]
        for bf16, channels_last, compile in configs:
            rate = synthetic(arch, batch, bf16=bf16, channels_last=channels_last, compile=compile, steps=steps)
            label = (
                f"{'bf16' if bf16 else 'fp32'}, channels_last {'on' if channels_last else 'off'}, "
                f"{'compiled' if compile else 'eager'}"
            )
            share = f", {rate * flops / 1e12 / peak:.0%} of bf16 peak" if peak else ""
            rows.append((label, f"{rate:8.0f} images/s{share}"))
    with tempfile.TemporaryDirectory() as tmp:
        rows += from_jpegs(Path(tmp), args.quick, batch)
    peak_text = f"{peak:.0f} TFLOP/s dense bf16" if peak else "peak unknown: pass --peak-tflops"
    table(f"GPU training throughput on {name} ({peak_text})", rows)


if __name__ == "__main__":
    sys.exit(main())

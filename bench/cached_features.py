"""Benchmark 2, cached vs uncached feature extraction: ``strategy=feature_extraction augment=none`` trained for E
epochs through ``run(cfg)`` (the real config, callbacks, logs, checkpoints, test), with and without
``data.cache_features=true``.

    python bench/cached_features.py [--quick] [--epochs 5]

Prints the per-epoch time (training + validation; checkpoint saving, the same ~45 MB file on both sides, shown
apart), the total fit time (the cached side includes its one-time extraction of train and val) and both runs'
validation and test accuracies. Targets: per-epoch ratio ≥ 100×; accuracies equal within 1 point. A random-init
ResNet-18 stands in for ImageNet weights (nothing is downloaded), which changes the accuracy, not the time.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch
from _common import parse_args, steady, table
from _timing import EpochTimer
from hydra import compose, initialize_config_dir
from omegaconf import open_dict
from torchvision.models import resnet18

from transferlab.commands.train import run
from transferlab.data.demo import make_demo_dataset
from transferlab.launch.startup import prepare

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
prepare()  # the configs' resolvers and schemas (conf/ lists the Hydra schemas of launch/schemas.py)
_ = EpochTimer  # instantiated by Hydra from the callbacks.timer override below


def train(tmp: Path, name: str, overrides: list[str]) -> tuple[dict, list[float]]:
    times = tmp / f"{name}-epochs.json"
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                *overrides,
                "+callbacks.timer._target_=_timing.EpochTimer",
                f"+callbacks.timer.path={times}",
                "~callbacks.progress_bar",
                "+trainer.enable_progress_bar=false",
                "+trainer.enable_model_summary=false",
                "plots.enabled=false",
            ],
        )
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp / name)
    metrics = run(cfg)
    return metrics, json.loads(times.read_text())


def main() -> None:
    args = parse_args(__doc__.split("\n")[0], epochs=(int, 5, "training epochs of each run"))
    per_class, drawn, image_size, epochs = (8, 32, 32, 2) if args.quick else (100, 160, 160, args.epochs)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        root = make_demo_dataset(tmp / "shapes", images_per_class=per_class, image_size=drawn)
        torch.manual_seed(0)
        weights = tmp / "resnet18-random.pth"
        torch.save(resnet18().state_dict(), weights)
        common = [
            "data=folder",
            f"data.root={root}",
            f"data.image_size={image_size}",
            "data.batch_size=32",
            "data.num_workers=0",
            "data.val_fraction=0.2",
            "data.test_fraction=0.2",
            "trainer=cpu",
            f"trainer.max_epochs={epochs}",
            "strategy=feature_extraction",
            f"model.weights={weights}",
            "augment=none",
        ]
        cached, cached_epochs = train(tmp, "cached", [*common, "data.cache_features=true"])
        uncached, uncached_epochs = train(tmp, "uncached", common)
    c, u = steady(cached_epochs), steady(uncached_epochs)
    table(
        f"Cached vs uncached feature extraction: ResNet-18, {5 * per_class} images ({image_size} px, 60/20/20 split), "
        f"{epochs} epochs, CPU ({torch.get_num_threads()} threads)",
        [
            ("uncached epoch (train + val)", f"{u:.3f} s  (all: {', '.join(f'{s:.2f}' for s in uncached_epochs)})"),
            ("cached epoch (train + val)", f"{c * 1000:.1f} ms  (all: {', '.join(f'{s:.3f}' for s in cached_epochs)})"),
            ("per-epoch ratio uncached / cached", f"{u / c:.0f}x  (target >= 100x)"),
            ("uncached fit (all epochs, + checkpoints)", f"{uncached['fit_seconds']:.2f} s"),
            ("cached fit (extraction + all epochs)", f"{cached['fit_seconds']:.2f} s"),
            ("total fit ratio", f"{uncached['fit_seconds'] / cached['fit_seconds']:.1f}x"),
            ("best val acc uncached / cached", f"{uncached['best_val_acc']:.4f} / {cached['best_val_acc']:.4f}"),
            ("test acc uncached / cached", f"{uncached['test_acc']:.4f} / {cached['test_acc']:.4f}"),
        ],
    )


if __name__ == "__main__":
    main()

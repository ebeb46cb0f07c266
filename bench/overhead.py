"""Benchmark 1, framework overhead: a transferlab training epoch vs a hand-written PyTorch loop (the notebook
style: Dataset + DataLoader + model + SGD) on identical data, model, batch size, image size and workers, on CPU.

    python bench/overhead.py [--quick] [--epochs 4] [--workers 0]

Both sides read the same files with the same decoder and augmentation and train a ResNet-18 from scratch with the
same SGD. The notebook normalises in its Dataset, transferlab in the model after the batch is loaded; transferlab
adds what a run always has (Lightning's loop, torchmetrics, logging to CSV, the Finetuning callback). Validation
and checkpoints are left out of both. Target: transferlab ≤ 1.03 × the hand-written epoch.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from _common import IMAGENET_MEAN, IMAGENET_STD, make_jpeg_folder, parse_args, steady, table
from _timing import EpochTimer
from pytorch_lightning import Callback, Trainer, seed_everything
from pytorch_lightning.loggers import CSVLogger
from torch.utils.data import DataLoader, Dataset

from transferlab.backbones.builder import build_network
from transferlab.data.datamodule import FolderDataModule
from transferlab.data.images import read_rgb
from transferlab.data.transforms import build_train_transform, normalize_images
from transferlab.training.classifier import ImageClassifier
from transferlab.training.finetuning import Finetuning

AUGMENT = {"random_crop_scale": [0.35, 1.0], "hflip": 0.5, "rot90": 0.0, "color_jitter": 0.0}
SGD = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.01, "momentum": 0.9, "weight_decay": 1e-4}


class NotebookDataset(Dataset):
    """The notebook's Dataset: a list of (path, label), read and transformed per item."""

    def __init__(self, items, transform, normalization) -> None:
        self.items, self.transform, self.normalization = items, transform, normalization

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index):
        path, label = self.items[index]
        # As a notebook does: normalised in the Dataset, so workers ship float32 (transferlab ships uint8).
        return normalize_images(self.transform(image=read_rgb(path))["image"], *self.normalization), label


class HandWritten:
    """The notebook's training loop, one epoch per call."""

    def __init__(self, datamodule: FolderDataModule, workers: int, image_size: int) -> None:
        train = datamodule.datasets["train"]
        items = [(train.root / path, label) for path, label in zip(train.paths, train.labels, strict=True)]
        transform = build_train_transform(image_size=image_size, **AUGMENT)
        self.loader = DataLoader(
            NotebookDataset(items, transform, (IMAGENET_MEAN, IMAGENET_STD)),
            batch_size=datamodule.batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=workers,
            persistent_workers=workers > 0,
        )
        self.model = build_network("resnet18", datamodule.num_classes)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
        self.seconds: list[float] = []

    def epoch(self) -> None:
        started = time.perf_counter()
        self.model.train()
        running_loss, correct, seen = 0.0, 0, 0
        for images, labels in self.loader:
            self.optimizer.zero_grad()
            logits = self.model(images)
            loss = F.cross_entropy(logits, labels)
            loss.backward()
            self.optimizer.step()
            running_loss += loss.item() * len(labels)  # what the notebook prints after each epoch
            correct += int((logits.argmax(1) == labels).sum())
            seen += len(labels)
        self.seconds.append(time.perf_counter() - started)


class Interleave(Callback):
    """Runs one hand-written epoch after each transferlab epoch, so that both see the same load on a shared machine."""

    def __init__(self, hand_written: HandWritten) -> None:
        self.hand_written = hand_written

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.hand_written.epoch()


def transferlab_epochs(datamodule: FolderDataModule, epochs: int, log_dir: Path, hand_written: HandWritten):
    model = ImageClassifier(
        backbone="resnet18",
        class_names=datamodule.class_names,
        strategy={"name": "scratch"},
        optimizer=SGD,
        preprocessing=datamodule.preprocessing.with_normalization(IMAGENET_MEAN, IMAGENET_STD).to_dict(),
    )
    timer = EpochTimer()
    trainer = Trainer(
        accelerator="cpu",
        max_epochs=epochs,
        limit_val_batches=0,
        logger=CSVLogger(log_dir),
        log_every_n_steps=10,
        callbacks=[Finetuning(), timer, Interleave(hand_written)],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=datamodule)
    return timer.seconds


def main() -> None:
    args = parse_args(
        __doc__.split("\n")[0],
        epochs=(int, 6, "epochs per side; the first is warm-up and not counted"),
        workers=(int, 0, "loader workers, the same on both sides"),
    )
    per_class, size, image_size, epochs = (8, (48, 48), 32, 2) if args.quick else (64, (160, 120), 96, args.epochs)
    with tempfile.TemporaryDirectory() as tmp:
        root = make_jpeg_folder(Path(tmp) / "data", classes=5, per_class=per_class, size=size)
        datamodule = FolderDataModule(
            str(root),
            image_size=image_size,
            batch_size=16 if args.quick else 32,
            num_workers=args.workers,
            val_fraction=0.1,
            test_fraction=0.1,
            augment=AUGMENT,
        )
        datamodule.setup("fit")
        seed_everything(0, verbose=False)
        hand_written = HandWritten(datamodule, args.workers, image_size)
        ours = transferlab_epochs(datamodule, epochs, Path(tmp) / "logs", hand_written)
        theirs = hand_written.seconds
    a, b = steady(ours), steady(theirs)
    table(
        f"Framework overhead: ResNet-18 from scratch, {len(datamodule.datasets['train'])} train images, "
        f"{image_size} px, batch {datamodule.batch_size}, {args.workers} workers, {torch.get_num_threads()} threads, "
        f"median of epochs 2..{epochs}, the two loops' epochs interleaved",
        [
            ("transferlab epoch", f"{a:.3f} s  (all: {', '.join(f'{s:.2f}' for s in ours)})"),
            ("hand-written epoch", f"{b:.3f} s  (all: {', '.join(f'{s:.2f}' for s in theirs)})"),
            ("ratio transferlab / hand-written", f"{a / b:.3f}x  (target <= 1.03x)"),
            ("ratio of the fastest epochs", f"{min(ours[1:] or ours) / min(theirs[1:] or theirs):.3f}x"),
        ],
    )


if __name__ == "__main__":
    main()

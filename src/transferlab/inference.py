"""Owns inference with a trained model: the checkpoint (``ckpt_path``) and the run it sits in, loading it, batched
class probabilities for image files, preprocessed exactly as the checkpoint's ``preprocessing`` says, and
``predict.py``'s predictions.csv, test-time augmentation (TTA), and :class:`Predictor` for images held in memory.

``eval.py``, ``predict.py``, ``export.py``, the end-of-run plots and :class:`Predictor` all go through here, so every
one of them sees an image the way the network saw its validation images.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import albumentations as A
import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.progress import track
from rich.table import Table
from rich.text import Text
from torch.utils.data import DataLoader, Dataset

from transferlab.data import default_num_workers
from transferlab.files import atomic_write_csv
from transferlab.images import (
    IMAGE_EXTENSIONS,
    is_image_file,
    read_rgb,  # read_rgb's Pillow-mode rules, for in-memory images
)
from transferlab.module import ImageClassifier
from transferlab.resolvers import beside_run  # noqa: F401  (re-exported: it was defined here)
from transferlab.rundir import CHECKPOINT_DIR, run_dir_of
from transferlab.transforms import eval_transform_of

log = logging.getLogger(__name__)


def checkpoint_file(ckpt_path: str | Path | None) -> Path:
    """``ckpt_path`` of eval/predict/export, checked: it must name an existing checkpoint file."""
    if ckpt_path is None or str(ckpt_path) in ("", "???"):
        raise ValueError(
            "ckpt_path is required: pass ckpt_path=<run_dir>/checkpoints/best-….ckpt (any .ckpt written by train.py)"
        )
    path = Path(ckpt_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"ckpt_path={ckpt_path}: no such checkpoint file; pass the path of a .ckpt file, e.g. "
            "<run_dir>/checkpoints/best-….ckpt"
        )
    return path


def find_checkpoint(run_dir: str | Path, ckpt: str = "best") -> Path:
    """The checkpoint file of a training run, for code that holds a run dir (notebooks, tests).

    Args:
        run_dir: the run's output folder (it holds ``checkpoints/``).
        ckpt: ``"best"`` (the best-by-val/acc checkpoint), ``"last"``, or the path of a ``.ckpt`` file.
    """
    run_dir = Path(run_dir).expanduser()
    if ckpt not in ("best", "last"):
        path = Path(ckpt).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"ckpt={ckpt}: no such checkpoint file; use ckpt=best, ckpt=last or a .ckpt path")
        return path
    folder = run_dir / CHECKPOINT_DIR
    if not folder.is_dir():
        raise FileNotFoundError(
            f"run_dir={run_dir} has no {CHECKPOINT_DIR}/ folder: point run_dir at the output folder of a train.py run"
        )
    if ckpt == "last":
        path = folder / "last.ckpt"
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: use ckpt=best or ckpt=<path to a .ckpt file>")
        return path
    candidates = sorted(folder.glob("best-*.ckpt"))
    if len(candidates) > 1:
        # metrics.json names the one the run tested; the others are left over from an earlier attempt.
        named = _best_ckpt_from_metrics(run_dir)
        candidates = [c for c in candidates if c.name == named] or candidates
    if len(candidates) != 1:
        found = [c.name for c in candidates] or "none"
        raise FileNotFoundError(
            f"expected one best-*.ckpt in {folder}, found {found}: pass ckpt=<path to a .ckpt file> to choose"
        )
    return candidates[0]


def _best_ckpt_from_metrics(run_dir: Path) -> str | None:
    try:
        return Path(json.loads((run_dir / "metrics.json").read_text())["best_ckpt"]).name
    except (OSError, ValueError, KeyError):
        return None


def load_classifier(ckpt_path: str | Path) -> ImageClassifier:
    """The model of a checkpoint, on the CPU, in eval mode; nothing but the checkpoint is needed."""
    model = ImageClassifier.load_from_checkpoint(ckpt_path, map_location="cpu", weights_only=True)
    return model.eval()


def resolve_device(device: str) -> torch.device:
    """``"auto"``: CUDA when there is a GPU, else Apple's MPS, else the CPU; otherwise any torch device string."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    return torch.device(device)


def eval_transform(model: ImageClassifier) -> A.Compose:
    preprocessing = model.hparams.get("preprocessing")
    if not preprocessing:
        raise ValueError("the checkpoint carries no preprocessing (image_size, mean, std): retrain it with train.py")
    return eval_transform_of(preprocessing)


PLAIN = ("identity",)
FLIPS = ("identity", "hflip")
ROTATIONS = ("rot90", "rot180", "rot270")


def check_tta(tta: Any) -> bool:
    if not isinstance(tta, bool):
        raise ValueError(f"tta={tta!r} must be true or false (test-time augmentation: average flipped/rotated views)")
    return tta


def trained_with_rot90(model: ImageClassifier, ckpt_path: str | Path | None = None) -> bool:
    """Whether the model's run trained with rotations by 90° (``augment.rot90`` > 0).

    The checkpoint's own ``augment`` hparam says it; a checkpoint without one (saved before it was kept) is asked
    of its run's saved config (``<run_dir>/.hydra/config.yaml``) when ``ckpt_path`` lies in a run's ``checkpoints/``;
    otherwise it counts as trained without.
    """
    augment = model.hparams.get("augment")
    if augment is None and ckpt_path is not None:
        augment = _run_augment(ckpt_path)
    return bool(augment) and float(augment.get("rot90") or 0) > 0


def _run_augment(ckpt_path: str | Path) -> dict[str, Any] | None:
    run_dir = run_dir_of(ckpt_path)
    config_file = None if run_dir is None else run_dir / ".hydra" / "config.yaml"
    if config_file is None or not config_file.is_file():
        return None
    try:
        augment = OmegaConf.select(OmegaConf.load(config_file), "augment", throw_on_resolution_failure=True)
        return OmegaConf.to_container(augment, resolve=True) if augment is not None else None
    except Exception as error:  # an interpolation that only resolves inside the training job
        log.warning("Cannot read augment of %s (%s): TTA leaves out the rot90 views", config_file, error)
        return None


def tta_views(
    model: ImageClassifier, ckpt_path: str | Path | None = None, *, rot90: bool | None = None
) -> tuple[str, ...]:
    """The views TTA averages the softmax over: the eval crop and its horizontal flip, plus the crop turned by 90°,
    180° and 270° when the run trained with rot90 (``rot90=None``: see :func:`trained_with_rot90`)."""
    rot90 = trained_with_rot90(model, ckpt_path) if rot90 is None else rot90
    return FLIPS + (ROTATIONS if rot90 else ())


def _view(images: torch.Tensor, name: str) -> torch.Tensor:
    if name == "identity":
        return images
    if name == "hflip":
        return images.flip(-1)
    return images.rot90(int(name.removeprefix("rot")) // 90, dims=(-2, -1))  # counter-clockwise


def batch_probs(
    model: ImageClassifier, images: torch.Tensor, views: Sequence[str] = PLAIN
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax probabilities of a preprocessed batch (the eval transform's uint8 NCHW, on the model's device) averaged
    over ``views`` (``PLAIN``, or :func:`tta_views`), and those of the first view, the batch as it is.

    A flip or rotation of the uint8 crop equals that of the normalised crop: normalising is per pixel and channel.
    """
    probs = [model(_view(images, view)).float().softmax(dim=1) for view in views]
    return torch.stack(probs).mean(dim=0), probs[0]


class ImagePaths(Dataset):
    """Image files as ``(tensor, index)``; a file that cannot be read gives a zero image and index ``-1 - index``.

    A negative index marks the failure so that one corrupt file among thousands costs its own row, not the run.
    """

    def __init__(self, paths: Sequence[Path], transform: A.Compose, image_size: int) -> None:
        self.paths = list(paths)
        self.transform = transform
        self.blank = torch.zeros(3, image_size, image_size, dtype=torch.uint8)  # the transforms' dtype

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        try:
            image = read_rgb(self.paths[index])
        except (OSError, ValueError) as error:
            log.warning("Skipping %s: %s", self.paths[index], error)
            return self.blank, -1 - index
        return self.transform(image=image)["image"], index


@dataclass
class Predictions:
    """Class probabilities of the images that could be read, and the paths of those that could not."""

    paths: list[Path]  # the readable images, in input order
    probs: torch.Tensor  # (len(paths), num_classes), float32 on the CPU; averaged over views
    unreadable: list[Path]
    views: tuple[str, ...] = PLAIN  # what probs averages over: PLAIN, or tta_views(...)
    plain_probs: torch.Tensor | None = None  # without TTA (the first view alone) when views has more than one


@torch.inference_mode()
def predict_files(
    model: ImageClassifier,
    paths: Sequence[str | Path],
    *,
    batch_size: int = 64,
    num_workers: int | str = 0,
    device: str = "auto",
    progress: bool = False,
    views: Sequence[str] = PLAIN,
) -> Predictions:
    """Softmax probabilities for every image file, in batches, with the checkpoint's eval preprocessing.

    ``progress``: a progress bar over the batches (for folders of images). ``views``: ``PLAIN``, or
    :func:`tta_views` for test-time augmentation (``probs`` averages them, ``plain_probs`` keeps the plain view).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    views = tuple(views)
    paths = [Path(p) for p in paths]
    dataset = ImagePaths(paths, eval_transform(model), int(model.hparams.preprocessing["image_size"]))
    if num_workers == "auto":
        num_workers = default_num_workers()
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers={num_workers!r} must be a non-negative integer or auto")
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers)
    target = resolve_device(device)
    model = model.to(target).eval()
    kept: list[int] = []
    probs: list[torch.Tensor] = []
    plain: list[torch.Tensor] = []
    batches = track(loader, description="Classifying", total=len(loader), disable=not progress, transient=True)
    for images, indices in batches:
        ok = indices >= 0
        if ok.any():
            averaged, first = batch_probs(model, images[ok].to(target), views)
            probs.append(averaged.cpu())
            plain.append(first.cpu())
            kept.extend(indices[ok].tolist())
    unreadable = sorted(set(range(len(paths))) - set(kept))
    num_classes = len(model.class_names)
    return Predictions(
        paths=[paths[i] for i in kept],
        probs=torch.cat(probs) if probs else torch.zeros(0, num_classes),
        unreadable=[paths[i] for i in unreadable],
        views=views,
        plain_probs=(torch.cat(plain) if plain else torch.zeros(0, num_classes)) if len(views) > 1 else None,
    )


def preprocessed_image(model: ImageClassifier, path: str | Path) -> torch.Tensor:
    """One image after the checkpoint's eval preprocessing (resize, centre crop), before normalisation: uint8 CHW,
    the picture the network is shown."""
    return eval_transform(model)(image=read_rgb(path))["image"]


def network_input(model: ImageClassifier, path: str | Path) -> torch.Tensor:
    """One image as the network sees it: the checkpoint's eval preprocessing, normalised, CHW float32."""
    return model.normalize(preprocessed_image(model, path))


def list_images(inputs: str | Path | Sequence[str | Path]) -> list[Path]:
    """Image files of predict's ``input``: a file is taken as it is, a folder is searched recursively; or a list."""
    if isinstance(inputs, str | Path):
        inputs = [inputs]
    found: list[Path] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if is_image_file(p) and not _hidden(p, path)))
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"input={item}: no such file or folder; pass an image file or a folder of images")
    if not found:
        raise ValueError(f"input={list(map(str, inputs))} holds no image files ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    return found


def _hidden(path: Path, top: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(top).parts)


def predict(cfg: DictConfig) -> list[dict[str, Any]]:
    """Classify ``cfg.input`` with the checkpoint ``cfg.ckpt_path``; write ``predictions.csv`` and return its rows.

    Each row has the path, the top-``cfg.top_k`` classes with their probabilities (``top1`` is the prediction), and
    an error for a file that could not be read. A short table of the first rows is printed.
    """
    if cfg.top_k < 1:
        raise ValueError(f"top_k={cfg.top_k} must be >= 1")
    tta = check_tta(cfg.tta)
    ckpt_path = checkpoint_file(cfg.ckpt_path)
    model = load_classifier(ckpt_path)
    if not cfg.input:
        raise ValueError("input is required: pass input=<an image file or a folder of images>, or input=[a.jpg,b/]")
    inputs = cfg.input if isinstance(cfg.input, str) else list(cfg.input)
    paths = list_images(inputs)
    predictions = predict_files(
        model,
        paths,
        batch_size=cfg.batch_size,
        num_workers=cfg.num_workers,
        device=cfg.device,
        progress=len(paths) > cfg.batch_size,
        views=tta_views(model, ckpt_path) if tta else PLAIN,
    )
    k = min(cfg.top_k, len(model.class_names))
    probs, indices = predictions.probs.topk(k, dim=1)
    by_path = dict(zip(predictions.paths, zip(probs.tolist(), indices.tolist(), strict=True), strict=True))
    rows = []
    for path in paths:
        row: dict[str, Any] = {"path": str(path)}
        if path in by_path:
            for rank, (prob, index) in enumerate(zip(*by_path[path], strict=True), start=1):
                row[f"top{rank}"] = model.class_names[index]
                row[f"top{rank}_probability"] = round(prob, 4)
        else:
            row["error"] = "unreadable image"
        rows.append(row)
    columns = ["path", *(f"top{r}{s}" for r in range(1, k + 1) for s in ("", "_probability")), "error"]
    output = atomic_write_csv(
        Path(cfg.paths.output_dir) / "predictions.csv", columns, ([row.get(c) for c in columns] for row in rows)
    )
    print_predictions(rows, k)
    log.info(
        "Classified %d image(s) (%d unreadable) with %s%s; wrote %s",
        len(predictions.paths),
        len(predictions.unreadable),
        model.hparams.backbone,
        f", TTA over {'/'.join(predictions.views)}" if tta else "",
        output,
    )
    return rows


def print_predictions(rows: Sequence[dict[str, Any]], k: int, limit: int = 10) -> None:
    """The first ``limit`` rows as a table (file name, top-k classes with probabilities), then the unreadable files."""
    table = Table(title=f"Predictions ({len(rows)} image(s); all in predictions.csv)")
    table.add_column("file", overflow="fold")
    for rank in range(1, k + 1):
        table.add_column(f"top{rank}")
        table.add_column("p", justify="right")
    for row in rows[:limit]:
        cells = [Path(row["path"]).name]  # Text below, not str: rich would read "[...]" in a file name as markup
        for r in range(1, k + 1):
            cells += [row.get(f"top{r}", ""), f"{row[f'top{r}_probability']:.2f}" if "error" not in row else ""]
        table.add_row(*map(Text, cells))
    console = Console()
    console.print(table)
    unreadable = [row["path"] for row in rows if "error" in row]
    if unreadable:
        console.print(f"{len(unreadable)} unreadable file(s): " + ", ".join(unreadable), style="red", markup=False)

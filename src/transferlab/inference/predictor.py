"""Owns in-memory prediction for notebook users: ``Predictor`` classifies PIL images, numpy arrays and paths with
exactly the checkpoint's eval preprocessing, and optional test-time augmentation (``image_files.py``, ``tta.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from transferlab.data.images import read_rgb, to_rgb_array  # read_rgb's Pillow-mode rules, for in-memory images
from transferlab.devices import resolve_device
from transferlab.inference.image_files import model_preprocessing
from transferlab.inference.trained_model import checkpoint_file, load_classifier, trained_with_rot90
from transferlab.inference.tta import PLAIN, batch_probs, check_tta, tta_views
from transferlab.training.classifier import ImageClassifier

ImageInput = Image.Image | np.ndarray | str | os.PathLike
ACCEPTED = "PIL images, uint8 numpy arrays of shape HxW, HxWx3 (RGB) or HxWx4 (RGBA), or image file paths"


def image_array(image: ImageInput, index: int = 0, *, min_side: int | None = None) -> np.ndarray:
    """One in-memory image or image file as HxWx3 uint8 RGB, by :func:`~transferlab.data.images.read_rgb`'s rules (EXIF
    orientation applied, grayscale and deep images to RGB, alpha composited onto black). ``min_side``: a file is
    decoded as eval decodes it (see :meth:`~transferlab.data.preprocessing.Preprocessing.decode_side`).

    Raises:
        ValueError: naming ``images[index]`` and what is accepted, for anything else or a file that cannot be read.
    """
    if isinstance(image, str | os.PathLike):
        try:
            return read_rgb(image, min_side=min_side)
        except FileNotFoundError:
            raise ValueError(f"images[{index}]: no such file {os.fspath(image)}; pass {ACCEPTED}") from None
        except (OSError, ValueError) as error:
            raise ValueError(f"images[{index}]: {error}") from error
    if isinstance(image, Image.Image):
        try:
            return to_rgb_array(ImageOps.exif_transpose(image))  # a copy: the caller's image is left as it is
        except Exception as error:  # a lazily opened file that turns out cut short, etc. (see read_rgb)
            raise ValueError(f"images[{index}]: cannot read the {image.mode} PIL image: {error}") from error
    if isinstance(image, np.ndarray):
        shape_ok = image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))
        if image.dtype == np.uint8 and shape_ok and image.shape[0] > 0 and image.shape[1] > 0:
            return to_rgb_array(Image.fromarray(image))  # mode L, RGB or RGBA from the shape
        raise ValueError(
            f"images[{index}]: a {image.dtype} array of shape {image.shape}; pass {ACCEPTED} "
            "(a float image in 0..1 becomes uint8 with (image * 255).round().astype(np.uint8))"
        )
    raise ValueError(f"images[{index}]: {type(image).__name__} is not an image; pass {ACCEPTED}")


@dataclass(frozen=True, eq=False)  # eq would compare the arrays element-wise
class ImagePrediction:
    """One image's prediction from :class:`Predictor`."""

    top_k: list[tuple[str, float]]  # (class name, probability), most probable first
    probs: np.ndarray  # every class's probability (float32), in the model's class_names order

    @property
    def label(self) -> str:
        """The predicted class (top-1)."""
        return self.top_k[0][0]

    @property
    def probability(self) -> float:
        """The predicted class's probability."""
        return self.top_k[0][1]


class Predictor:
    """Classifies images held in memory (notebooks): PIL images of any mode, uint8 numpy arrays, or file paths,
    preprocessed exactly as ``eval.py`` and ``predict.py`` preprocess files; batched, without gradients, in eval mode,
    on the model's device.

    Args:
        model: a trained classifier (``ImageClassifier.load_from_checkpoint(path)``).
        device: move the model there (``"auto"``: the GPU when there is one); None keeps it where it is.
        rot90: whether TTA adds the 90°/180°/270° views; None asks the checkpoint's hparams
            (:func:`trained_with_rot90`). :meth:`from_checkpoint` also asks the run's saved config.
        batch_size: images per forward pass.

    Example::

        from transferlab import Predictor

        predictor = Predictor.from_checkpoint("outputs/2026-11-23/20-14-05/checkpoints/best-epoch007.ckpt")
        for p in predictor.predict([Image.open("cat.jpg"), "dog.png", array], top_k=3, tta=True):
            print(p.label, p.probability, p.top_k)
    """

    def __init__(
        self,
        model: ImageClassifier,
        *,
        device: str | torch.device | None = None,
        rot90: bool | None = None,
        batch_size: int = 64,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be >= 1")
        self.model = model if device is None else model.to(resolve_device(str(device)))
        preprocessing = model_preprocessing(model)
        self.transform = preprocessing.eval_transform()
        self.min_side = preprocessing.decode_side()
        self.class_names = list(model.class_names)
        self.tta_views = tta_views(model, rot90=rot90)
        self.batch_size = batch_size

    @classmethod
    def from_checkpoint(cls, ckpt_path: str | Path, *, device: str = "auto", batch_size: int = 64) -> Predictor:
        """The checkpoint's model on ``device`` (``"auto"``: the GPU when there is one, else the CPU)."""
        path = checkpoint_file(ckpt_path)
        model = load_classifier(path)
        return cls(model, device=device, rot90=trained_with_rot90(model, path), batch_size=batch_size)

    @torch.inference_mode()
    def probs(self, images: ImageInput | Iterable[ImageInput], *, tta: bool = False) -> torch.Tensor:
        """Class probabilities, (number of images, number of classes) float32 on the CPU, rows in input order.

        ``images``: one image or a sequence of them (a 4-D array is a batch of HxWx3 or HxWx4 images). ``tta``:
        average the softmax over the crop, its horizontal flip and, for a run trained with rot90, its rotations.
        """
        views = self.tta_views if check_tta(tta) else PLAIN
        items = [images] if isinstance(images, Image.Image | str | os.PathLike) else images
        if isinstance(items, np.ndarray) and items.ndim != 4:
            items = [items]
        items = list(items)
        model, was_training = self.model, self.model.training
        model.eval()
        try:
            probs = []
            for start in range(0, len(items), self.batch_size):
                batch = [
                    self.transform(image=image_array(item, index, min_side=self.min_side))["image"]
                    for index, item in enumerate(items[start : start + self.batch_size], start=start)
                ]
                probs.append(batch_probs(model, torch.stack(batch).to(model.device), views)[0].cpu())
        finally:
            model.train(was_training)
        return torch.cat(probs) if probs else torch.zeros(0, len(self.class_names))

    def predict(
        self, images: ImageInput | Iterable[ImageInput], *, top_k: int = 3, tta: bool = False
    ) -> list[ImagePrediction]:
        """The ``top_k`` classes with their probabilities, and every class's probability, per image in input order
        (see :meth:`probs` for ``images`` and ``tta``).

        Raises:
            ValueError: an item that is not an accepted image, or a file that cannot be read, named by its index.
        """
        if top_k < 1:
            raise ValueError(f"top_k={top_k} must be >= 1")
        probs = self.probs(images, tta=tta)
        values, indices = probs.topk(min(top_k, len(self.class_names)), dim=1)
        return [
            ImagePrediction(
                top_k=[(self.class_names[i], p) for p, i in zip(row_p, row_i, strict=True)], probs=row.numpy()
            )
            for row, row_p, row_i in zip(probs, values.tolist(), indices.tolist(), strict=True)
        ]

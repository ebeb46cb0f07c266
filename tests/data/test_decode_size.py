"""Reduced-size JPEG decoding (read_rgb's min_side, Pillow's draft mode) and the size hints the loaders pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from transferlab.data.augment import Augment
from transferlab.data.datamodule import FolderDataModule
from transferlab.data.images import read_rgb
from transferlab.data.preprocessing import Preprocessing


def photo(width: int, height: int) -> Image.Image:
    """A smooth colour image, the kind of content JPEG is made for (noise would not survive a downscale)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack([x / width, y / height, 0.5 + 0.5 * np.sin(x / 40) * np.cos(y / 30)], axis=-1)
    return Image.fromarray((rgb * 255).astype(np.uint8))


def test_large_jpeg_decodes_at_reduced_size_with_the_same_content(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    photo(1600, 1200).save(path, quality=95)
    full = read_rgb(path)
    small = read_rgb(path, min_side=140)
    assert full.shape == (1200, 1600, 3)
    assert small.shape == (150, 200, 3)  # 1/8 scale: the smallest DCT scale whose shorter side is >= 140
    assert small.dtype == np.uint8 and small.flags.writeable and small.flags.c_contiguous
    reference = np.asarray(Image.fromarray(full).resize((200, 150), Image.Resampling.BOX), dtype=np.float32)
    assert np.abs(small.astype(np.float32) - reference).mean() < 3  # same picture, not a crop or a shift


def test_reduced_jpeg_keeps_the_needed_side_and_exif_rotation(tmp_path: Path) -> None:
    path = tmp_path / "sideways.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90° clockwise to display
    photo(1200, 800).save(path, exif=exif, quality=95)
    full = read_rgb(path)
    small = read_rgb(path, min_side=300)
    assert full.shape == (1200, 800, 3)  # upright: portrait
    assert small.shape == (600, 400, 3)  # 1/2 scale: 1/4 would give a shorter side of 200 < 300
    assert min(read_rgb(path, min_side=401).shape[:2]) == 800  # not twice the needed side: full size


def test_min_side_leaves_other_formats_and_small_jpegs_alone(tmp_path: Path) -> None:
    image = photo(640, 480)
    image.save(tmp_path / "a.png")
    image.save(tmp_path / "b.jpg", quality=95)
    image.convert("CMYK").save(tmp_path / "c.jpg")
    image.convert("L").save(tmp_path / "d.jpg")
    np.testing.assert_array_equal(read_rgb(tmp_path / "a.png", min_side=32), read_rgb(tmp_path / "a.png"))
    np.testing.assert_array_equal(read_rgb(tmp_path / "b.jpg", min_side=300), read_rgb(tmp_path / "b.jpg"))
    for name in ("c.jpg", "d.jpg"):  # CMYK and grayscale JPEGs still come out as RGB, at reduced size
        array = read_rgb(tmp_path / name, min_side=60)
        assert array.shape == (60, 80, 3) and array.dtype == np.uint8


@pytest.mark.parametrize(
    ("crop_scale", "expected"),
    [(None, 37), ([1.0, 1.0], 37), ([0.35, 1.0], 63)],  # 32 / 0.875 -> 37; 32 / sqrt(0.75 * 0.35) -> 63
)
def test_decode_side_never_lets_a_transform_upsample(crop_scale, expected) -> None:
    augment = Augment(random_crop_scale=crop_scale)
    assert Preprocessing(image_size=32, resize_ratio=0.875).decode_side(augment) == expected


def test_loaders_pass_the_decode_side(shapes_root: Path) -> None:
    augment = {"random_crop_scale": [0.35, 1.0], "hflip": 0.5, "rot90": 0.0, "color_jitter": 0.0}
    datamodule = FolderDataModule(
        str(shapes_root), image_size=32, num_workers=0, val_fraction=0.2, test_fraction=0.2, augment=augment
    )
    datamodule.setup("fit")
    assert datamodule.datasets["train"].decode_side == 63
    assert datamodule.datasets["val"].decode_side == datamodule.datasets["test"].decode_side == 37

"""Tests for transferlab.data.images: every Pillow mode we meet in the wild decodes to upright HxWx3 uint8."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from transferlab.data.images import IMAGE_EXTENSIONS, check_image, is_image_file, read_rgb, set_max_image_pixels

RED = (255, 0, 0)
GREEN = (0, 255, 0)


def _check_rgb(array: np.ndarray, height: int, width: int) -> None:
    assert array.shape == (height, width, 3)
    assert array.dtype == np.uint8
    assert array.flags.c_contiguous
    assert array.flags.writeable


def test_extensions_are_lowercase_with_dot() -> None:
    assert all(ext.startswith(".") and ext == ext.lower() for ext in IMAGE_EXTENSIONS)
    assert {".jpg", ".jpeg", ".png", ".tif", ".webp"} <= IMAGE_EXTENSIONS


def test_rgb_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "rgb.jpg"
    Image.new("RGB", (12, 8), RED).save(path, quality=95)
    array = read_rgb(path)
    _check_rgb(array, 8, 12)
    np.testing.assert_allclose(array[4, 6], RED, atol=8)


def test_uppercase_extension(tmp_path: Path) -> None:
    path = tmp_path / "PHOTO.JPG"
    Image.new("RGB", (6, 5), GREEN).save(path, format="JPEG")
    assert is_image_file(path)
    _check_rgb(read_rgb(str(path)), 5, 6)


def test_rgba_is_composited_onto_black(tmp_path: Path) -> None:
    pixels = np.zeros((2, 3, 4), np.uint8)
    pixels[0, 0] = (200, 100, 50, 255)  # opaque: unchanged
    pixels[0, 1] = (200, 100, 50, 128)  # half transparent: halved
    pixels[0, 2] = (255, 255, 255, 0)  # transparent white: black
    path = tmp_path / "rgba.png"
    Image.fromarray(pixels, mode="RGBA").save(path)
    array = read_rgb(path)
    _check_rgb(array, 2, 3)
    np.testing.assert_array_equal(array[0, 0], (200, 100, 50))
    np.testing.assert_allclose(array[0, 1], (100, 50, 25), atol=1)
    np.testing.assert_array_equal(array[0, 2], (0, 0, 0))


def test_grayscale_png(tmp_path: Path) -> None:
    path = tmp_path / "gray.png"
    Image.new("L", (4, 3), 77).save(path)
    array = read_rgb(path)
    _check_rgb(array, 3, 4)
    assert (array == 77).all()


def test_palette_png_with_and_without_transparency(tmp_path: Path) -> None:
    image = Image.new("P", (4, 2), 0)
    image.putpalette([*RED, *GREEN])
    image.putpixel((3, 1), 1)
    image.save(tmp_path / "opaque.png")
    image.save(tmp_path / "transparent.png", transparency=0)

    opaque = read_rgb(tmp_path / "opaque.png")
    _check_rgb(opaque, 2, 4)
    np.testing.assert_array_equal(opaque[0, 0], RED)
    np.testing.assert_array_equal(opaque[1, 3], GREEN)

    transparent = read_rgb(tmp_path / "transparent.png")
    _check_rgb(transparent, 2, 4)
    np.testing.assert_array_equal(transparent[0, 0], (0, 0, 0))  # index 0 is transparent
    np.testing.assert_array_equal(transparent[1, 3], GREEN)


def test_16bit_grayscale_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    gradient = np.linspace(0, 65535, 16 * 16).astype(np.uint16).reshape(16, 16)
    gradient[0, 1] = 32768
    path = tmp_path / "gray16.png"
    Image.fromarray(gradient).save(path)
    assert Image.open(path).mode == "I;16"
    array = read_rgb(path)
    _check_rgb(array, 16, 16)
    assert array[-1, -1, 0] == 255  # 65535
    assert array[0, 0, 0] == 0
    assert abs(int(array[0, 1, 0]) - 128) <= 1  # mid value
    assert len(np.unique(array[..., 0])) > 200  # a gradient, not a clipped block of 255


def test_12bit_image_in_16bit_png_keeps_every_level(tmp_path: Path) -> None:
    # A 12-bit sensor's ramp 0..4095 stored as a 16-bit PNG (microscopy, X-ray): scaled by 4095, not 65535.
    ramp = np.arange(4096, dtype=np.uint16).reshape(64, 64)
    path = tmp_path / "ramp12.png"
    Image.fromarray(ramp).save(path)
    gray = read_rgb(path)[..., 0]
    assert gray.min() == 0 and gray.max() == 255
    assert len(np.unique(gray)) == 256  # every output level used; scaling by 65535 would give 16
    np.testing.assert_array_equal(gray, np.round(ramp * (255 / 4095)).astype(np.uint8))
    flat = tmp_path / "flat.png"
    Image.fromarray(np.full((4, 4), 40000, dtype=np.uint16)).save(flat)
    assert (read_rgb(flat) == round(40000 / 257)).all()  # 16-bit range: a flat image keeps its brightness


def test_max_image_pixels_raises_the_decompression_bomb_limit(tmp_path: Path) -> None:
    path = tmp_path / "scan.png"
    Image.new("L", (1, 1)).save(path)
    # A 195-megapixel scan, as its header says (no pixels needed to test the limit).
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", 15_000, 13_000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    try:
        reason = check_image(path)
        assert "DecompressionBombError" in reason and "data.max_image_pixels (now 178956970)" in reason
        set_max_image_pixels(200_000_000)
        assert check_image(path) is None
        with pytest.raises(ValueError, match=r"data\.max_image_pixels=0 must be a positive integer"):
            set_max_image_pixels(0)
    finally:
        set_max_image_pixels(None)
    assert check_image(path) is not None


@pytest.mark.parametrize("dtype", [np.int32, np.float32])
def test_32bit_integer_and_float_are_stretched_to_full_range(tmp_path: Path, dtype: type) -> None:
    values = np.arange(5 * 6, dtype=dtype).reshape(5, 6) * 1000 - 3000
    path = tmp_path / "wide.tif"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode in ("I", "F")
    array = read_rgb(path)
    _check_rgb(array, 5, 6)
    assert array.min() == 0 and array.max() == 255
    assert (np.diff(array[..., 0].ravel().astype(int)) >= 0).all()  # order preserved


def test_cmyk_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(path, quality=95)  # no cyan, full magenta + yellow
    array = read_rgb(path)
    _check_rgb(array, 8, 8)
    np.testing.assert_allclose(array[4, 4], RED, atol=10)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    # Stored 40 wide x 20 high with a red top-left block; orientation 6 says "rotate 90 degrees clockwise
    # to display", so the upright image is 20 wide x 40 high with the block at the top right.
    image = Image.new("RGB", (40, 20), GREEN)
    image.paste(RED, (0, 0, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif, quality=95)

    array = read_rgb(path)
    _check_rgb(array, 40, 20)
    np.testing.assert_allclose(array[4, 15], RED, atol=20)
    np.testing.assert_allclose(array[4, 4], GREEN, atol=20)


def test_animated_gif_gives_first_frame(tmp_path: Path) -> None:
    path = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (6, 4), RED), Image.new("RGB", (6, 4), GREEN)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(path).n_frames == 2
    array = read_rgb(path)
    _check_rgb(array, 4, 6)
    assert (array == RED).all()


def test_corrupt_file_raises_value_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "broken.png"
    path.write_bytes(b"definitely not a png")
    with pytest.raises(ValueError, match=r"cannot read image .*broken\.png"):
        read_rgb(path)


def test_truncated_jpeg_raises_value_error(tmp_path: Path) -> None:
    whole = tmp_path / "whole.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(whole)
    path = tmp_path / "truncated.jpg"
    path.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"truncated\.jpg"):
        read_rgb(path)


def test_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"ghost\.png"):
        read_rgb(tmp_path / "ghost.png")


def test_is_image_file(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    Image.new("L", (2, 2)).save(image)
    hidden = tmp_path / ".hidden.png"
    Image.new("L", (2, 2)).save(hidden, format="PNG")
    folder = tmp_path / "folder.jpg"
    folder.mkdir()
    text = tmp_path / "notes.txt"
    text.write_text("hi")

    assert is_image_file(image)
    assert not is_image_file(hidden)
    assert not is_image_file(folder)
    assert not is_image_file(text)
    assert not is_image_file(tmp_path / "missing.jpg")


def _phone_photo(path: Path, image_format: str) -> np.ndarray:
    """A 40x60 smooth gradient saved as HEIC or AVIF (lossy: compared with a tolerance); returns its pixels."""
    from pillow_heif import register_heif_opener

    register_heif_opener()  # to write the file; reading registers it on its own (see the subprocess test)
    y, x = np.mgrid[0:40, 0:60]
    pixels = np.stack([x * 4, y * 6, np.full_like(x, 128)], axis=-1).astype(np.uint8)
    Image.fromarray(pixels).save(path, format=image_format, quality=95)
    return pixels


@pytest.mark.parametrize(("name", "image_format"), [("IMG_0001.HEIC", "HEIF"), ("photo.avif", "AVIF")])
def test_phone_formats_read_as_rgb(tmp_path: Path, name: str, image_format: str) -> None:
    path = tmp_path / name
    pixels = _phone_photo(path, image_format)
    assert is_image_file(path) and check_image(path, full=True) is None
    array = read_rgb(path)
    assert array.shape == (40, 60, 3) and array.dtype == np.uint8
    assert np.abs(array.astype(int) - pixels).mean() < 6


def test_heic_under_a_jpeg_name_is_read_and_the_plugin_loads_only_for_heif(tmp_path: Path) -> None:
    import subprocess
    import sys

    _phone_photo(tmp_path / "renamed.jpg", "HEIF")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "plain.png")
    script = f"""
import sys
from PIL import Image
from transferlab.data.images import read_rgb
read_rgb({str(tmp_path / "plain.png")!r})
assert "pillow_heif" not in sys.modules and "HEIF" not in Image.OPEN, "loaded for a PNG"
assert read_rgb({str(tmp_path / "renamed.jpg")!r}).shape == (40, 60, 3)
assert "HEIF" in Image.OPEN
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]

"""Image files: which files count as images, listing them, and decoding any of them to an upright HxWx3 uint8 RGB array.

This is the one place that knows about image file formats and Pillow modes; everything else sees RGB arrays.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from skimage.color import gray2rgb
from skimage.exposure import rescale_intensity

_BY_FREQUENCY = (".jpg", ".jpeg", ".png", ".heic", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".avif", ".heif")
IMAGE_EXTENSIONS: frozenset[str] = frozenset(_BY_FREQUENCY)
# For str.endswith, which tries a tuple in order: the common extensions first, lower case, then upper case, so
# most names match at the first try and without building a lower-case copy of the name.
IMAGE_SUFFIXES: tuple[str, ...] = _BY_FREQUENCY + tuple(ext.upper() for ext in _BY_FREQUENCY)

# Modes whose alpha channel is composited away; palette images join them when they carry transparency.
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_GRAY16_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
# The formats opened, by Pillow's name: photos and scans. Anything else is refused before a format plugin reads
# it: PostScript/EPS (which Pillow hands to the Ghostscript interpreter), PDF, PSD, ICO, and the rest.
# JPEG includes MPO (multi-picture phone JPEGs); AVIF is Pillow's own (11.3+); HEIF (iPhones' HEIC) is pillow-heif's
# plugin, registered the first time such a file is read (`_register_heif`), so that other runs never load libheif.
FORMATS = ("JPEG", "PNG", "BMP", "GIF", "TIFF", "WEBP", "AVIF", "HEIF")
HEIF_SUFFIXES = (".heic", ".heif")
# ISO base media file brands (bytes 8-12, after "ftyp") of HEIF stills: HEVC-coded (heic, heix, …) and the generic
# image brands Apple and others write; AVIF files (brand avif) are Pillow's.
HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})
# Longer side / shorter side above which an image is refused: resizing the shorter side of a 1 x 20,000 px strip
# to a training size would ask for gigabytes (the file itself is a few hundred bytes, so no pixel limit sees it).
# 100:1 keeps panoramas and line scans; at 224 px training an image then costs at most 256 x 25,600 x 3 = 20 MB.
MAX_ASPECT_RATIO = 100
# Pillow refuses an image of more than twice its MAX_IMAGE_PIXELS (a decompression bomb) and warns above it.
PILLOW_MAX_PIXELS = 2 * Image.MAX_IMAGE_PIXELS


class RefusedImage(ValueError):
    """A file that is, or may be, an image but is not opened: another format, a hazardous size, NaN pixels."""


def _open(path: Path) -> Image.Image:
    """Pillow's ``Image.open`` restricted to `FORMATS`, with the size checks of `_check_size`."""
    Image.init()  # registers every plugin (once): Image.open(formats=...) looks each name up
    if str(path).lower().endswith(HEIF_SUFFIXES):
        _register_heif()
    try:
        # Only the formats registered so far: Image.open fails on a name it has no plugin for (HEIF, until needed).
        image = Image.open(path, formats=[name for name in FORMATS if name in Image.OPEN])
    except Image.UnidentifiedImageError:
        if "HEIF" not in Image.OPEN and _is_heif(path):  # a HEIC photo under another name (IMG_0001.jpg)
            _register_heif()
            return _open(path)
        detected = _detected_format(path)
        if detected is None:
            raise
        raise RefusedImage(f"{detected} file: not one of the formats read ({', '.join(FORMATS)})") from None
    try:
        _check_size(*image.size)
    except RefusedImage:
        image.close()
        raise
    return image


def _register_heif() -> None:
    """pillow-heif's HEIF opener, once per process (a loader worker registers it again on its first HEIC file)."""
    if "HEIF" not in Image.OPEN:
        from pillow_heif import register_heif_opener

        register_heif_opener()


def _is_heif(path: Path) -> bool:
    with path.open("rb") as file:
        head = file.read(12)
    return head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS


def _detected_format(path: Path) -> str | None:
    """The format Pillow's plugins recognise from the file's first bytes (their ``accept`` tests, which only
    compare bytes: no plugin parses the file), or None."""
    with path.open("rb") as file:
        prefix = file.read(64)
    for name, (_, accept) in Image.OPEN.items():
        with contextlib.suppress(Exception):
            if name not in FORMATS and accept is not None and accept(prefix):
                return name
    return None


def _check_size(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise RefusedImage(f"image size is {width}x{height}")
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise RefusedImage(
            f"image is {width}x{height} px, an aspect ratio over {MAX_ASPECT_RATIO}:1: resizing its shorter side "
            "to the training size would need gigabytes of memory"
        )


def set_max_image_pixels(limit: int | None) -> None:
    """Images of more than `limit` pixels are refused as decompression bombs; None: Pillow's own limit.

    Process-wide, as Pillow's setting is: a loader worker started by spawn (macOS, Windows) starts from
    Pillow's default, so datasets call this in each worker too (``data.max_image_pixels``).
    """
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise ValueError(f"data.max_image_pixels={limit!r} must be a positive integer, or null for Pillow's limit")
    Image.MAX_IMAGE_PIXELS = (limit or PILLOW_MAX_PIXELS) // 2


def has_image_name(name: str) -> bool:
    """True for a non-hidden file name whose extension (any case) is in `IMAGE_EXTENSIONS`."""
    # Hidden files are editor/OS debris (macOS "._x.jpg" resource forks look like JPEGs but are not).
    return name[:1] != "." and (name.endswith(IMAGE_SUFFIXES) or name.lower().endswith(IMAGE_SUFFIXES))


def is_image_file(path: str | os.PathLike | os.DirEntry) -> bool:
    """True for a regular, non-hidden file whose extension (any case) is in `IMAGE_EXTENSIONS`.

    Given an ``os.DirEntry`` (from ``os.scandir``), it costs no system call for a regular file: the directory
    listing already says what the entry is, so scanning a folder stays close to the cost of listing it.
    """
    if not has_image_name(path.name if isinstance(path, os.DirEntry) else os.path.basename(path)):
        return False
    if isinstance(path, os.DirEntry):
        try:
            return path.is_file()  # follows links, as Path.is_file does
        except OSError:  # a link loop (ELOOP) or no permission: not a file we can read
            return False
    return os.path.isfile(path)


def list_images(inputs: str | Path | Sequence[str | Path]) -> list[Path]:
    """Image files of predict's ``input``: a file is taken as it is, a folder is searched recursively (hidden files
    and folders left out, sorted); or a list of either."""
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


def read_rgb(path: str | Path, *, min_side: int | None = None) -> np.ndarray:
    """Decode an image file to an upright, writable, C-contiguous HxWx3 uint8 RGB array.

    ``min_side``: the shorter side the caller needs. A JPEG at least twice as large is decoded at a reduced
    size (libjpeg's DCT scaling by 1/2, 1/4 or 1/8, through Pillow's draft mode) whose shorter side is still
    at least ``min_side``: 3-10x faster on photos than a full decode followed by a resize. Other formats, and
    ``min_side=None``, decode at full size.

    EXIF orientation is applied. Multi-frame files (animated GIF/WebP, multi-page TIFF) give their first
    frame. Transparent images are composited onto black; 16-bit grayscale is scaled by its bit depth (0..4095
    of a 12-bit sensor to 0..255, see `_scale_by_bit_depth`); 32-bit integer ("I") and float ("F") images, which
    carry no fixed range, are stretched from their own minimum..maximum to 0..255.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: the file exists but is not a readable image (corrupt, truncated, unknown format).
    """
    path = Path(path)
    try:
        return _decode(path, min_side)
    except FileNotFoundError:
        raise
    except Exception as err:
        # Pillow's format plugins signal bad data with many types besides OSError (SyntaxError, struct.error,
        # IndexError, EOFError, DecompressionBombError, ...; the fuzz test finds them), and every one of them
        # means the same thing here: these bytes are not an image we can read.
        raise ValueError(f"cannot read image {path}: {_reason(path, err)}") from err


def check_image(path: str | Path, *, full: bool = False) -> str | None:
    """Why `path` cannot be used as an image, or None when it can.

    The default checks the header only: Pillow identifies the format from the content (not the extension) and
    reads the size, without decoding pixels (~35 µs per file). Empty files, non-images, unreadable files and
    decompression bombs are caught this way; a file cut short after its header is not. ``full=True`` decodes
    the whole image as training would (:func:`read_rgb`), which catches truncation too, at the cost of a decode.
    """
    path = Path(path)
    try:
        if full:
            _decode(path)
            return None
        with _open(path):
            pass
    except Exception as err:  # see read_rgb for why every type counts
        return _reason(path, err)
    return None


def _decode(path: Path, min_side: int | None = None) -> np.ndarray:
    # Pillow rather than skimage.io (which calls Pillow or imageio for JPEGs, with no EXIF orientation support:
    # phone photos are stored sideways with an orientation tag far more often than not) or
    # torchvision.io.decode_jpeg (as fast as Pillow on CPU here, see bench/loader.py, but JPEG only and without
    # draft mode, so the other formats would need a second path anyway).
    with _open(path) as image:
        if min_side is not None and image.format == "JPEG" and min(image.size) >= 2 * min_side:
            # Before exif_transpose, which would decode; the request is symmetric, so rotation does not matter.
            scale = min_side / min(image.size)
            image.draft(None, (math.ceil(image.width * scale), math.ceil(image.height * scale)))
        ImageOps.exif_transpose(image, in_place=True)
        return to_rgb_array(image)


def _reason(path: Path, err: BaseException) -> str:
    """A one-line reason without the path (the caller names the file)."""
    with contextlib.suppress(OSError):
        if path.stat().st_size == 0:
            return "empty file (0 bytes)"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    text = str(err).split("\n")[0].strip()
    if isinstance(err, RefusedImage):
        return text
    if isinstance(err, Image.DecompressionBombError):
        limit = 2 * Image.MAX_IMAGE_PIXELS
        return f"DecompressionBombError: {text} Raise data.max_image_pixels (now {limit}) to read images this large."
    if isinstance(err, Image.UnidentifiedImageError) or text.startswith("cannot identify image file"):
        return "not an image (cannot identify the format)"
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


# Bit depths that 16-bit files commonly hold: 10-, 12- and 14-bit sensors store their values in 16 bits.
_BIT_DEPTHS = (8, 10, 12, 14, 16)


def _scale_by_bit_depth(gray16: np.ndarray) -> np.ndarray:
    """16-bit grayscale to uint8, dividing by the full scale of the smallest bit depth that holds its maximum.

    A 16-bit file need not use 16 bits: a 12-bit sensor (microscopy, X-ray) stores 0..4095 in it, and scaling
    by 65535 would leave 16 grey levels. Scaling by 4095 instead keeps every level the sensor has, and images of
    one bit depth keep their relative brightness (a per-image stretch would lose it, and make flat images black).
    """
    peak = int(gray16.max(initial=0))
    bits = next(b for b in _BIT_DEPTHS if peak < 2**b)
    return np.round(gray16 * (255.0 / (2**bits - 1))).astype(np.uint8)


def _stretch(values: np.ndarray) -> np.ndarray:
    """32-bit integer or float grayscale, which has no fixed range, to uint8 by its own minimum..maximum."""
    low, high = values.min(), values.max()
    if high == low:
        return np.zeros(values.shape, dtype=np.uint8)
    return rescale_intensity(values.astype(np.float64), in_range=(low, high), out_range=np.uint8).astype(np.uint8)


def to_rgb_array(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode == "RGB":
        # np.asarray over a Pillow image is read-only (it wraps the bytes of tobytes()); np.array pays one
        # memcpy so that torch.from_numpy and in-place augmentations work on the result.
        return np.array(image)
    if mode == "L":
        return gray2rgb(np.asarray(image))
    if mode in _GRAY16_MODES:
        # astype: skimage cannot scale big-endian ("I;16B") arrays; a no-op for native byte order.
        return gray2rgb(_scale_by_bit_depth(np.asarray(image).astype(np.uint16, copy=False)))
    if mode in ("I", "F"):
        values = np.asarray(image)
        if not np.isfinite(values).all():
            raise RefusedImage("floating-point image holds NaN or infinite values")
        return gray2rgb(_stretch(values))
    if mode in _ALPHA_MODES or (mode == "P" and "transparency" in image.info):
        # Composite onto black (premultiply) rather than drop alpha: the colour under a fully transparent
        # pixel is undefined and encoders leave anything there (often the removed background), so dropping
        # alpha would show the model invisible content; premultiplied, transparent always means black.
        if mode != "RGBa":
            image = (image if mode == "RGBA" else image.convert("RGBA")).convert("RGBa")
        premultiplied = np.asarray(image)
        return np.ascontiguousarray(premultiplied[..., :3])
    # P, 1, CMYK, YCbCr, LAB, HSV, RGBX: Pillow's own conversions (CMYK naively, without ICC profiles).
    return np.array(image.convert("RGB"))

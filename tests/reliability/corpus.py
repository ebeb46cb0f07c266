"""The bad-image corpus: every kind of broken or awkward file that real image folders hold, generated here (the
``corpus`` fixture of ``conftest.py`` writes it)."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

RNG = np.random.default_rng(0)


def _noise(size: tuple[int, int] = (32, 32)) -> Image.Image:
    return Image.fromarray(RNG.integers(0, 255, (size[1], size[0], 3), np.uint8))


def _bytes(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    # A decompression bomb needs only its header to claim a huge size; no pixels have to exist.
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display: stored 40x20, shown 20x40
    return _bytes(_noise((40, 20)), "JPEG", exif=exif)


def _animated_gif() -> bytes:
    buffer = io.BytesIO()
    frames = [Image.new("RGB", (16, 8), c) for c in ((255, 0, 0), (0, 255, 0))]
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    return buffer.getvalue()


def _multipage_tiff() -> bytes:
    buffer = io.BytesIO()
    frames = [_noise((12, 10)), _noise((12, 10))]
    frames[0].save(buffer, format="TIFF", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


def _palette() -> Image.Image:
    image = Image.new("P", (16, 16), 0)
    image.putpalette([255, 0, 0, 0, 0, 255])
    image.putpixel((3, 3), 1)
    return image


JPEG = _bytes(_noise((64, 64)), "JPEG")
PNG = _bytes(_noise((64, 64)), "PNG")

# name (relative to the class folder) -> bytes. Unreadable under any check:
HEADER_BAD = {
    "empty.jpg": b"",
    "random-bytes.jpg": RNG.integers(0, 256, 2048, np.uint8).tobytes(),
    "text-named.png": b"just some notes, saved with the wrong name\n",
    "error-page.jpg": b"<html><body>404 Not Found</body></html>",  # a download that returned an error page
    "bomb.png": _png_header_only(100_000, 100_000),  # 10^10 pixels: above Pillow's decompression-bomb limit
    "no-permission.jpg": JPEG,  # chmod 000 below; readable anyway when the tests run as root
}
# Headers fine, pixels cut short: found by verify=full, or when a loader reads them.
BODY_BAD = {
    "truncated.jpg": JPEG[: len(JPEG) // 2],
    "truncated.png": PNG[: len(PNG) // 2],
}
# Awkward but valid: each must be read, not skipped. name -> (bytes, expected (height, width)).
AWKWARD = {
    "static.gif": (_bytes(_noise(), "GIF"), (32, 32)),
    "animated.gif": (_animated_gif(), (8, 16)),
    "palette.png": (_bytes(_palette(), "PNG"), (16, 16)),
    "rgba.png": (_bytes(Image.new("RGBA", (10, 12), (200, 100, 50, 128)), "PNG"), (12, 10)),
    "gray16.png": (_bytes(Image.fromarray(np.full((9, 7), 40000, np.uint16)), "PNG"), (9, 7)),
    "gray.jpg": (_bytes(Image.new("L", (20, 10), 90), "JPEG"), (10, 20)),
    "gray-alpha.png": (_bytes(Image.new("LA", (5, 6), (90, 200)), "PNG"), (6, 5)),
    "bilevel.bmp": (_bytes(Image.new("1", (8, 8), 1), "BMP"), (8, 8)),
    "cmyk.jpg": (_bytes(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG"), (8, 8)),
    "exif-rotated.jpg": (_exif_rotated(), (40, 20)),
    "one-pixel.png": (_bytes(Image.new("RGB", (1, 1), (1, 2, 3)), "PNG"), (1, 1)),
    "gif-saved-as.jpg": (_bytes(_noise((6, 6)), "GIF"), (6, 6)),  # the extension lies; the content decides
    "multipage.tif": (_multipage_tiff(), (10, 12)),
    "photo.webp": (_bytes(_noise((14, 8)), "WEBP"), (8, 14)),
    "with space.JPEG": (JPEG, (64, 64)),
    os.fsdecode(b"caf\xe9-latin1.png"): (PNG, (64, 64)),  # not valid UTF-8: legal on Linux, surrogate-escaped
    "nested/deeper/inner.png": (PNG, (64, 64)),  # subfolders inside a class belong to the class
}
# Never listed: hidden files, OS debris, non-images, links that lead nowhere.
IGNORED = [".DS_Store", "._photo.jpg", "notes.txt", "loop-a.jpg", "loop-b.jpg", "dangling.png", "loopdir"]


def make_corpus(root: Path) -> Path:
    """``root/{cat,dog}``: 10 plain images per class; cat also holds every kind above."""
    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True)
        for i in range(10):
            (root / label / f"plain{i}.png").write_bytes(_bytes(_noise(), "PNG"))
    cat = root / "cat"
    for name, data in {**HEADER_BAD, **BODY_BAD, **{n: d for n, (d, _) in AWKWARD.items()}}.items():
        path = cat / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (cat / "no-permission.jpg").chmod(0)
    (cat / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (cat / "._photo.jpg").write_bytes(b"\0\5\26\7 AppleDouble")
    (cat / "notes.txt").write_text("not an image")
    os.symlink("loop-b.jpg", cat / "loop-a.jpg")
    os.symlink("loop-a.jpg", cat / "loop-b.jpg")
    os.symlink("missing.png", cat / "dangling.png")
    os.symlink("..", cat / "loopdir")  # a folder link back up: a walk that followed it would never end
    return root


def header_bad() -> set[str]:
    """Paths (relative to the root) that a header check must find; no-permission only when it really is."""
    bad = {f"cat/{name}" for name in HEADER_BAD}
    if os.geteuid() == 0:  # root reads a chmod 000 file without complaint, so it is a good image then
        bad.discard("cat/no-permission.jpg")
    return bad


def all_bad() -> set[str]:
    return header_bad() | {f"cat/{name}" for name in BODY_BAD}


def kinds() -> int:
    return len(HEADER_BAD) + len(BODY_BAD) + len(AWKWARD) + len(IGNORED)

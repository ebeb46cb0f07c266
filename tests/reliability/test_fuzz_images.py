"""Fuzzing the image reader: random and mutated bytes never crash; they end as an image or the policy's error."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from transferlab.data.images import check_image, read_rgb


def _seed_files() -> list[bytes]:
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (12, 10, 3), np.uint8))
    seeds = []
    for fmt, mode in (("PNG", "RGB"), ("JPEG", "RGB"), ("GIF", "P"), ("BMP", "RGB"), ("TIFF", "RGB"), ("WEBP", "RGB")):
        buffer = io.BytesIO()
        image.convert(mode).save(buffer, format=fmt)
        seeds.append(buffer.getvalue())
    return seeds


SEEDS = _seed_files()
# Bounded: about 300 examples in all, a few seconds; no deadline because 2 shared cores make timings noisy.
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


def _outcome(data: bytes, folder: Path) -> None:
    path = folder / "fuzz.jpg"
    path.write_bytes(data)
    try:
        array = read_rgb(path)
    except ValueError as error:  # the policy's outcome: skipped, or listed in the error
        assert str(path) in str(error)
        assert check_image(path, full=True) is not None
        return
    assert array.ndim == 3 and array.shape[2] == 3 and array.dtype == np.uint8
    assert check_image(path) is None and check_image(path, full=True) is None


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        _outcome(data, Path(folder))


@FUZZ
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
    st.integers(0, 10_000),
)
def test_mutated_images(seed: bytes, flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(seed)
    for position, value in flips:
        data[position % len(data)] = value
    with tempfile.TemporaryDirectory() as folder:
        _outcome(bytes(data[: max(cut, 8)]), Path(folder))

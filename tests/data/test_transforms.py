"""Tests for transferlab.data.transforms: output format, normalisation, and what each augment key does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transferlab.data.transforms import build_eval_transform, build_train_transform, normalize_images

SIZE = 16
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
NONE = {"random_crop_scale": None, "hflip": 0.0, "rot90": 0.0, "color_jitter": 0.0}


def _asymmetric(height: int = 20, width: int = 20) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _apply(transform, image: np.ndarray) -> torch.Tensor:
    return transform(image=image)["image"]


def test_eval_output_is_a_uint8_chw_tensor_that_normalises_per_channel() -> None:
    transform = build_eval_transform(image_size=SIZE)
    image = np.empty((30, 45, 3), np.uint8)
    image[...] = (10, 128, 250)
    out = _apply(transform, image)
    assert isinstance(out, torch.Tensor)
    assert out.shape == (3, SIZE, SIZE) and out.dtype == torch.uint8
    batch = normalize_images(torch.stack([out, out]), MEAN, STD)
    assert batch.shape == (2, 3, SIZE, SIZE) and batch.dtype == torch.float32
    for channel, value in enumerate((10, 128, 250)):
        expected = (value / 255 - MEAN[channel]) / STD[channel]
        torch.testing.assert_close(batch[:, channel], torch.full((2, SIZE, SIZE), expected), atol=1e-5, rtol=0)


def test_normalize_images_keeps_the_memory_format_and_refuses_floats() -> None:
    images = torch.randint(0, 256, (2, 3, SIZE, SIZE), dtype=torch.uint8).contiguous(memory_format=torch.channels_last)
    assert normalize_images(images, MEAN, STD).is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(TypeError, match="uint8"):
        normalize_images(images.float(), MEAN, STD)


def test_eval_resizes_shorter_side_then_centre_crops() -> None:
    # Shorter side 16 / 0.5 = 32: a 32x64 image is not resized, so the crop is exactly the centre.
    image = _asymmetric(32, 64)
    transform = build_eval_transform(image_size=SIZE, resize_ratio=0.5)
    expected = torch.from_numpy(image[8:24, 24:40]).permute(2, 0, 1)
    torch.testing.assert_close(_apply(transform, image), expected)


def test_eval_is_deterministic() -> None:
    transform = build_eval_transform(image_size=SIZE)
    image = _asymmetric(25, 31)
    assert torch.equal(_apply(transform, image), _apply(transform, image))


def test_train_without_augmentation_equals_eval() -> None:
    image = _asymmetric(25, 31)
    train = build_train_transform(image_size=SIZE, **NONE)
    evaluate = build_eval_transform(image_size=SIZE)
    assert torch.equal(_apply(train, image), _apply(evaluate, image))


def test_hflip_flips_left_right() -> None:
    image = _asymmetric()
    train = build_train_transform(image_size=SIZE, **{**NONE, "hflip": 1.0})
    evaluate = build_eval_transform(image_size=SIZE)
    assert torch.equal(_apply(train, image), _apply(evaluate, image).flip(-1))


def test_rot90_rotates_by_multiples_of_90_degrees() -> None:
    image = _asymmetric()
    train = build_train_transform(image_size=SIZE, **{**NONE, "rot90": 1.0})
    train.set_random_seed(0)
    upright = _apply(build_eval_transform(image_size=SIZE), image)
    rotations = [torch.rot90(upright, k, dims=(1, 2)) for k in range(4)]
    seen = set()
    for _ in range(12):
        out = _apply(train, image)
        matches = [k for k, rotated in enumerate(rotations) if torch.equal(out, rotated)]
        assert len(matches) == 1
        seen.add(matches[0])
    assert seen & {1, 2, 3}


def test_random_resized_crop_output_size_and_randomness() -> None:
    image = _asymmetric(50, 70)
    train = build_train_transform(image_size=SIZE, **{**NONE, "random_crop_scale": [0.08, 1.0]})
    train.set_random_seed(0)
    outs = [_apply(train, image) for _ in range(3)]
    assert all(out.shape == (3, SIZE, SIZE) and out.dtype == torch.uint8 for out in outs)
    assert not torch.equal(outs[0], outs[1])


def test_color_jitter_changes_colours_not_geometry() -> None:
    image = np.full((SIZE, SIZE, 3), (90, 140, 200), np.uint8)
    train = build_train_transform(image_size=SIZE, **{**NONE, "color_jitter": 0.4})
    train.set_random_seed(0)
    plain = _apply(build_eval_transform(image_size=SIZE), image)
    outs = [_apply(train, image) for _ in range(5)]
    assert any(not torch.equal(out, plain) for out in outs)
    assert all(out.shape == plain.shape for out in outs)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"hflip": 1.5}, "augment.hflip"),
        ({"hflip": -0.1}, "augment.hflip"),
        ({"rot90": 2.0}, "augment.rot90"),
        ({"color_jitter": -0.2}, "augment.color_jitter"),
        ({"random_crop_scale": [0.0, 1.0]}, "augment.random_crop_scale"),
        ({"random_crop_scale": [0.9, 0.5]}, "augment.random_crop_scale"),
        ({"random_crop_scale": [0.5, 1.2]}, "augment.random_crop_scale"),
        ({"random_crop_scale": [0.5]}, "augment.random_crop_scale"),
    ],
)
def test_invalid_augment_arguments_name_their_key(override: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        build_train_transform(image_size=SIZE, **{**NONE, **override})


def test_invalid_resize_ratio() -> None:
    with pytest.raises(ValueError, match="resize_ratio"):
        build_eval_transform(image_size=SIZE, resize_ratio=1.5)

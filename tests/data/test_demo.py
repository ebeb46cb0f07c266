"""Tests for transferlab.data.demo: layout, determinism, reuse, and the dataset appearing all at once."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from transferlab.data import demo
from transferlab.data.demo import DEMO_CLASSES, MARKER_NAME, make_demo_dataset
from transferlab.data.images import read_rgb

SMALL = {"images_per_class": 3, "image_size": 24}


def _contents(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def test_layout_counts_and_images(tmp_path: Path) -> None:
    root = make_demo_dataset(str(tmp_path / "demo"), **SMALL)
    assert root == tmp_path / "demo"
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == sorted(DEMO_CLASSES)
    for name in DEMO_CLASSES:
        files = sorted(p.name for p in (root / name).iterdir())
        assert files == [f"{name}_{i:04d}.png" for i in range(3)]
        image = read_rgb(root / name / files[0])
        assert image.shape == (24, 24, 3) and image.dtype == np.uint8
    assert json.loads((root / MARKER_NAME).read_text())["images_per_class"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]  # no temporary folder left behind


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    first = _contents(make_demo_dataset(tmp_path / "a", **SMALL, seed=7))
    second = _contents(make_demo_dataset(tmp_path / "b", **SMALL, seed=7))
    other = _contents(make_demo_dataset(tmp_path / "c", **SMALL, seed=8))
    assert first == second
    assert first.keys() == other.keys()
    assert all(first[key] != other[key] for key in first)


def test_images_within_a_class_differ(tmp_path: Path) -> None:
    root = make_demo_dataset(tmp_path / "demo", **SMALL)
    images = [read_rgb(p) for p in sorted((root / "star").iterdir())]
    assert not np.array_equal(images[0], images[1])


def test_reuse_does_not_rewrite(tmp_path: Path) -> None:
    root = make_demo_dataset(tmp_path / "demo", **SMALL)
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    assert make_demo_dataset(root, **SMALL) == root
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before


def test_other_arguments_regenerate(tmp_path: Path) -> None:
    root = make_demo_dataset(tmp_path / "demo", **SMALL, seed=0)
    old = _contents(root)
    make_demo_dataset(root, images_per_class=2, image_size=24, seed=1)
    new = _contents(root)
    assert len(new) == 2 * len(DEMO_CLASSES)
    assert new != {key: old[key] for key in new}
    assert json.loads((root / MARKER_NAME).read_text())["seed"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]


def test_refuses_a_non_empty_foreign_folder(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    (root / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(ValueError, match="photos"):
        make_demo_dataset(root, **SMALL)
    assert (root / "holiday.jpg").read_bytes() == b"precious"


def test_fills_an_existing_empty_folder(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    root.mkdir()
    make_demo_dataset(root, **SMALL)
    assert (root / MARKER_NAME).exists()


def test_killed_generation_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def die_halfway(folder: Path, spec: dict) -> None:
        (folder / "circle").mkdir(parents=True)
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "_write_images", die_halfway)
    with pytest.raises(KeyboardInterrupt):
        make_demo_dataset(tmp_path / "demo", **SMALL)
    assert list(tmp_path.iterdir()) == []


def test_losing_a_race_keeps_the_winners_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "demo"
    write_images = demo._write_images

    def write_then_let_another_rank_finish(folder: Path, spec: dict) -> None:
        write_images(folder, spec)
        # Another rank finishes while we are still writing our marker.
        winner = tmp_path / "winner"
        write_images(winner, spec)
        (winner / MARKER_NAME).write_text(json.dumps(spec))
        winner.rename(root)

    monkeypatch.setattr(demo, "_write_images", write_then_let_another_rank_finish)
    assert make_demo_dataset(root, **SMALL) == root
    monkeypatch.undo()
    reference = make_demo_dataset(tmp_path / "reference", **SMALL)
    assert _contents(root) == _contents(reference)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo", "reference"]


@pytest.mark.parametrize(
    ("kwargs", "name"), [({"images_per_class": 0}, "images_per_class"), ({"image_size": 8}, "image_size")]
)
def test_rejects_bad_arguments(tmp_path: Path, kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        make_demo_dataset(tmp_path / "demo", **kwargs)

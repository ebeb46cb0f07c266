"""plots: epoch logs read back across resumes, and the figures drawn from plain inputs."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.image import imread

from transferlab.reports import fonts
from transferlab.reports.charts import (
    plot_confusion_matrix,
    plot_image_grid,
    plot_learning_curves,
    read_epoch_logs,
    smooth_ema,
)


def write_log(run_dir: Path, version: int, text: str) -> None:
    path = run_dir / "logs" / f"version_{version}" / "metrics.csv"
    path.parent.mkdir(parents=True)
    path.write_text(text)


def test_epoch_logs_merge_resumed_versions_and_place_learning_rates(tmp_path: Path) -> None:
    # As Lightning's CSVLogger writes them: the LR monitor's row has no epoch and precedes its epoch's rows.
    write_log(
        tmp_path,
        0,
        "epoch,lr-SGD/head,step,train/loss_step,train/loss_epoch,val/acc\n"
        ",0.1,0,,,\n0,,4,2.0,,\n0,,4,,,0.5\n0,,4,,1.5,\n"
        ",0.05,5,,,\n1,,9,,,0.6\n1,,9,,1.2,\n",
    )
    # Killed during epoch 1 and resumed from epoch 1: version_1 has epoch 1 again, then epoch 2.
    write_log(tmp_path, 1, "epoch,lr-SGD/head,step,val/acc\n,0.05,5,\n1,,9,0.65\n,0.01,10,\n2,,14,0.7\n")
    series = read_epoch_logs(tmp_path)
    assert series["val/acc"] == {0: 0.5, 1: 0.65, 2: 0.7}  # the later version wins
    assert series["lr-SGD/head"] == {0: 0.1, 1: 0.05, 2: 0.01}
    assert series["train/loss_epoch"] == {0: 1.5, 1: 1.2}
    assert "train/loss_step" not in series and "step" not in series

    png = plot_learning_curves(series, tmp_path / "curves.png")
    assert imread(png).shape[1] > 3 * imread(png).shape[0]  # three panels side by side: loss, accuracy, lr


def test_learning_curves_draw_the_ema_and_mark_the_unfreeze_epoch(tmp_path: Path) -> None:
    # Debiased (TensorBoard): 0.2/0.2, 0.16/0.36, 0.128/0.488.
    assert smooth_ema([1.0, 0.0, 0.0], factor=0.8) == pytest.approx([1.0, 0.16 / 0.36, 0.128 / 0.488])
    assert smooth_ema([0.7] * 5) == pytest.approx([0.7] * 5)  # a constant is its own average
    rising = [0.2, 0.4, 0.6, 0.8, 0.9]
    assert abs(smooth_ema(rising)[-1] - rising[-1]) < 0.25  # the Keras form ends at 0.51, 0.39 behind
    assert smooth_ema([]) == []
    noisy = {"val/acc": {e: 0.5 + 0.3 * (e % 2) for e in range(6)}, "val/loss": {e: 1.0 - 0.1 * e for e in range(6)}}
    raw_only = imread(plot_learning_curves(noisy, tmp_path / "raw.png", smoothing=0))
    smoothed = imread(plot_learning_curves(noisy, tmp_path / "ema.png"))
    marked = imread(plot_learning_curves(noisy, tmp_path / "marked.png", unfreeze_epochs=[3]))
    assert raw_only.shape == smoothed.shape == marked.shape
    assert np.abs(smoothed - raw_only).max() > 0.5  # the EMA lines are drawn

    def grey(image: np.ndarray) -> np.ndarray:
        return (np.abs(image[..., 0] - 0.5) < 0.06) & (np.ptp(image[..., :3], axis=-1) < 0.02)

    # The dashed grey line at the unfreeze epoch: pixels that are grey in the marked figure only.
    assert (grey(marked) & ~grey(smoothed)).sum() > 100
    # Gradual unfreezing: a line at every step, so the grey columns of three steps hold those of one and more.
    gradual = imread(plot_learning_curves(noisy, tmp_path / "gradual.png", unfreeze_epochs=[1, 3, 5]))
    assert vertical_lines(grey(marked) & ~grey(smoothed)) == 2  # one per panel: loss, accuracy
    assert vertical_lines(grey(gradual) & ~grey(smoothed)) == 6


def vertical_lines(mask: np.ndarray) -> int:
    """Runs of adjacent pixel columns that are mostly set from top to bottom (a dashed line covers about half)."""
    tall = mask.sum(axis=0) > 0.3 * mask.shape[0]
    return int(np.count_nonzero(tall[1:] & ~tall[:-1]) + tall[0])


def test_no_logs_give_no_series(tmp_path: Path) -> None:
    assert read_epoch_logs(tmp_path) == {}


def test_confusion_matrix_checks_its_shape(tmp_path: Path) -> None:
    png = plot_confusion_matrix([[3, 1], [0, 4]], ["cat", "dog"], tmp_path / "cm.png")
    assert imread(png).ndim == 3
    with pytest.raises(ValueError, match=r"shape \(2, 2\) but there are 3 class names"):
        plot_confusion_matrix([[3, 1], [0, 4]], ["cat", "dog", "eel"], tmp_path / "cm.png")


def test_image_grid_draws_the_images_it_is_given(tmp_path: Path) -> None:
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = 255
    png = plot_image_grid([red] * 3, ["a", "b", "c"], tmp_path / "grid.png")
    pixels = imread(png)[..., :3]
    assert ((pixels[..., 0] > 0.9) & (pixels[..., 1] < 0.1)).mean() > 0.1  # a good share of pure red
    with pytest.raises(ValueError, match="no images to draw"):
        plot_image_grid([], [], tmp_path / "empty.png")


def _missing_from_default_but_in(font: str) -> str:
    """A printable character the default font lacks and `font` has (matplotlib ships STIX beside DejaVu Sans)."""
    default = fonts._charmap(font_manager.findfont(font_manager.FontProperties(family=[fonts._default_family()])))
    other = fonts._charmap(font_manager.findfont(font_manager.FontProperties(family=[font])))
    return next(chr(c) for c in sorted(other - default) if chr(c).isprintable() and not chr(c).isspace())


def test_a_name_the_default_font_lacks_is_drawn_with_a_font_that_has_it(tmp_path: Path) -> None:
    char = _missing_from_default_but_in("STIXGeneral")
    chosen = fonts.label_fonts(["cat", f"dog{char}"])
    assert chosen.labels == ("cat", f"dog{char}") and chosen.undrawn == ()
    assert len(chosen.families) >= 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with matplotlib.rc_context({"font.family": list(chosen.families)}):  # the fallback alone, no filter
            fig = Figure()
            fig.text(0.5, 0.5, f"dog{char}")
            fig.savefig(tmp_path / "fallback.png")
    assert not [w for w in caught if "missing from font" in str(w.message)]


def test_names_no_font_can_draw_are_indices_with_a_note_and_no_warning(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(fonts, "_fallback_fonts", lambda: ())  # a system with no CJK font (as this CI machine)
    names = ["cat", "猫", "狗🐕"]
    chosen = fonts.label_fonts(names)
    assert chosen.labels == ("cat", "#1", "#2") and chosen.undrawn == (1, 2)
    assert chosen.note().startswith("#1, #2: class names with no font")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plot_confusion_matrix([[1, 0, 0], [0, 1, 0], [0, 0, 1]], names, tmp_path / "cm.png")
        plot_image_grid([np.zeros((8, 8, 3), np.uint8)] * 2, ["猫 → 狗", "cat"], tmp_path / "grid.png")
    assert not [w for w in caught if "Glyph" in str(w.message)]
    assert (tmp_path / "cm.png").stat().st_size > 0

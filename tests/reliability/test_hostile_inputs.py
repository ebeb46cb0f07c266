"""Hostile and odd inputs, second round: each test here failed on the code before it (issue 14)."""

from __future__ import annotations

import struct
import subprocess
import zlib

import numpy as np
import pytest
from PIL import Image

from transferlab.data.bad_images import bad_images_error
from transferlab.data.images import check_image, read_rgb
from transferlab.data.samples import SampleTable
from transferlab.data.splits import read_splits_csv, write_splits_csv
from transferlab.files import atomic_write_csv, read_csv_rows

EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto 10 10 lineto stroke\nshowpage\n"


def png_header(width: int, height: int) -> bytes:
    """A valid PNG of the given size whose pixels compress to a few hundred bytes."""
    row = b"\0" + b"\0" * width

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(row * height, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_postscript_named_jpg_is_refused_without_running_an_interpreter(tmp_path, monkeypatch):
    path = tmp_path / "photo.jpg"
    path.write_bytes(EPS)

    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"an external program was started: {args[:1]}")

    for name in ("Popen", "run", "call", "check_call", "check_output"):
        monkeypatch.setattr(subprocess, name, no_subprocess)
    assert check_image(path) == "EPS file: not one of the formats read (JPEG, PNG, BMP, GIF, TIFF, WEBP, AVIF, HEIF)"
    with pytest.raises(ValueError, match="EPS file: not one of the formats read"):
        read_rgb(path)


@pytest.mark.parametrize("size", [(1, 20_000), (20_000, 1)])
def test_extreme_aspect_ratio_is_refused_from_its_header(tmp_path, size):
    path = tmp_path / "strip.png"
    path.write_bytes(png_header(*size))
    assert path.stat().st_size < 1000
    reason = check_image(path)
    assert reason.startswith(f"image is {size[0]}x{size[1]} px, an aspect ratio over 100:1")
    with pytest.raises(ValueError, match="aspect ratio over 100:1"):
        read_rgb(path)
    path.write_bytes(png_header(100, 8000))  # 80:1, a line scan: read
    assert read_rgb(path).shape == (8000, 100, 3)


def test_float_image_with_nan_is_a_bad_image(tmp_path):
    values = np.ones((4, 4), np.float32)
    values[1, 2] = np.nan
    path = tmp_path / "nan.tif"
    Image.fromarray(values, mode="F").save(path)
    with pytest.raises(ValueError, match="NaN or infinite"):
        read_rgb(path)
    values[1, 2] = np.inf
    Image.fromarray(values, mode="F").save(path)
    with pytest.raises(ValueError, match="NaN or infinite"):
        read_rgb(path)


NAMES = ["a,b.png", 'say "cheese".png', "new\nline.png", "carriage\rreturn.png", "tab\tand space .png", "ümlaut.png"]
NAMES.append(b"latin1-\xe9.png".decode("utf-8", "surrogateescape"))  # bytes that are not UTF-8


def test_every_csv_round_trips_every_file_name(tmp_path):
    rows = [(f"cat/{name}", "cat", "train") for name in NAMES] + [
        ("dog/x.png", "dog", "train"),
        ("dog/y.png", "dog", "val"),
    ]
    for path, _, _ in rows:
        (tmp_path / path).parent.mkdir(exist_ok=True)
        (tmp_path / path).write_bytes(b"")
    table = SampleTable.from_rows(rows)
    write_splits_csv(tmp_path / "splits.csv", table)
    assert read_splits_csv(tmp_path / "splits.csv", tmp_path) == table
    atomic_write_csv(tmp_path / "any.csv", ("path", "reason"), [(p, f"reason, with {p}") for p, _, _ in rows])
    back = read_csv_rows(tmp_path / "any.csv")
    assert [(r["path"], r["reason"]) for r in back] == [(p, f"reason, with {p}") for p, _, _ in rows]


def test_error_policy_names_every_bad_file_or_points_to_the_full_list(tmp_path):
    bad = {f"cls/{i:03d}.jpg": "not an image" for i in range(218)}
    message = str(bad_images_error(tmp_path, bad, tmp_path / "bad_images.csv"))
    named = [line for line in message.splitlines() if line.startswith("  cls/")]
    assert len(named) == 50
    assert f"… and 168 more: all 218 are listed in {tmp_path / 'bad_images.csv'}" in message
    assert [row["path"] for row in read_csv_rows(tmp_path / "bad_images.csv")] == sorted(bad)
    few = str(bad_images_error(tmp_path, dict(list(bad.items())[:3]), tmp_path / "other.csv"))
    assert few.count("  cls/") == 3 and not (tmp_path / "other.csv").exists()


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("a/1.png,a,train\na/1.png,a,val\n", "line 3: 'a/1.png' is listed again (first on line 2)"),
        ("a/1.png,a,train\nb/1.png,b,holdout\n", "line 3: expected path,class,split"),
        ("a/1.png,a,train\nb/1.png,b,val\n", "class(es) ['b'] have no train row"),
        ("a/1.png,a,train\nz/1.png,zebra,train\n", "'zebra' on line 3"),
    ],
)
def test_hand_edited_splits_file_errors_name_the_line(tmp_path, body, words):
    path = tmp_path / "splits.csv"
    path.write_text("path,class,split\n" + body)
    with pytest.raises(ValueError) as error:
        read_splits_csv(path, tmp_path, ["a", "b"])
    assert words in str(error.value)


def test_non_finite_loss_stops_the_run_and_keeps_the_last_finite_checkpoint(config, tmp_path):
    import torch

    from transferlab.commands.train import run
    from transferlab.training.nonfinite import NonFinite

    cfg = config("optimizer.lr=inf", "scheduler=none", output_dir=tmp_path / "run")
    with pytest.raises(NonFinite, match=r"the training loss is (nan|inf) at epoch 0, step \d+ .*optimizer\.lr"):
        run(cfg)
    assert not (tmp_path / "run" / "metrics.json").exists()
    for ckpt in (tmp_path / "run" / "checkpoints").glob("*.ckpt"):
        state = torch.load(ckpt, weights_only=True)["state_dict"]
        assert all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point()), ckpt


def test_weights_that_went_nan_on_a_finite_loss_stop_the_run_before_any_checkpoint(config, tmp_path):
    """optimizer.lr=inf with one training step an epoch: the step's own loss is finite, the update makes every
    weight NaN; the validation loss shows it, before the last (and only) epoch's checkpoints are written (issue 24)."""
    from transferlab.commands.train import run
    from transferlab.training.nonfinite import NonFinite

    one_step = ("optimizer.lr=inf", "scheduler=none", "data.batch_size=256", "trainer.max_epochs=1")
    with pytest.raises(NonFinite, match=r"the validation loss is nan .* at epoch 0, step 1: .*optimizer\.lr"):
        run(config(*one_step, output_dir=tmp_path / "run"))
    assert not (tmp_path / "run" / "metrics.json").exists()
    assert not list((tmp_path / "run" / "checkpoints").glob("*.ckpt"))


def test_a_checkpoint_with_a_non_finite_weight_is_not_saved() -> None:
    import torch
    from pytorch_lightning import Trainer

    from transferlab.training.nonfinite import NonFinite, StopOnNonFinite

    trainer = Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False)
    weights = {"net.fc.weight": torch.tensor([1.0, float("nan")]), "net.fc.bias": torch.zeros(2)}
    with pytest.raises(NonFinite, match=r"the weights net\.fc\.weight are NaN or infinite at epoch 0, step 0"):
        StopOnNonFinite().on_save_checkpoint(trainer, None, {"state_dict": weights})
    StopOnNonFinite().on_save_checkpoint(trainer, None, {"state_dict": {"net.fc.bias": torch.zeros(2)}})


def test_a_second_launch_into_a_busy_run_dir_is_refused_and_a_kill_frees_it(tmp_path):
    import signal
    import sys
    import time

    from transferlab.runs.lock import RunDirInUse, hold_run_dir

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom transferlab.runs.lock import hold_run_dir\n"
            f"with hold_run_dir({str(tmp_path)!r}):\n    print('held', flush=True)\n    time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with (
            pytest.raises(RunDirInUse, match=rf"is in use by another run \(process {holder.pid} on "),
            hold_run_dir(tmp_path),
        ):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    deadline = time.time() + 10
    while True:  # the OS releases a killed process's lock
        try:
            with hold_run_dir(tmp_path):
                break
        except RunDirInUse:
            assert time.time() < deadline
            time.sleep(0.1)


class _Payload:  # a pickled object that is not plain data: weights_only refuses to build it
    pass


def test_truncated_checkpoint_is_called_corrupt_not_unsafe(tmp_path):
    import torch

    from transferlab.training.checkpointing import load_checkpoint

    good = tmp_path / "epoch1.ckpt"
    torch.save({"state_dict": {"w": torch.ones(1000)}}, good)
    cut = tmp_path / "last.ckpt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"corrupt or incomplete checkpoint .* \(this folder has .*epoch1\.ckpt\)"):
        load_checkpoint(cut)
    unsafe = tmp_path / "unsafe.ckpt"
    torch.save({"state_dict": {}, "extra": _Payload()}, unsafe)
    with pytest.raises(ValueError, match="may run code when loaded, so it is refused"):
        load_checkpoint(unsafe)
    assert load_checkpoint(good)["state_dict"]["w"].sum() == 1000


def test_export_opset_is_honoured_or_refused(tmp_path):
    import onnx
    import torch

    from transferlab.commands.export import export_onnx

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()).eval()
    example = torch.rand(1, 3, 16, 16)
    export_onnx(net, example, tmp_path / "a.onnx", opset=21)
    assert [i.version for i in onnx.load(str(tmp_path / "a.onnx")).opset_import if i.domain == ""] == [21]
    with pytest.raises(ValueError, match=r"opset=13: torch\.onnx could not convert this model to opset 13"):
        export_onnx(net, example, tmp_path / "b.onnx", opset=13)
    assert not (tmp_path / "b.onnx").exists()
    with pytest.raises(ValueError, match="must be a positive integer"):
        export_onnx(net, example, tmp_path / "c.onnx", opset="18")

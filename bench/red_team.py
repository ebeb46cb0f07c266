"""The red-team table: every hostile input we know of, through the real entry points, one row each.

    python bench/red_team.py [--out DIR] [--timeout 300] [--memory-gb 6]

It generates a corpus (broken files, files that lie about their format, hazardous sizes, NaN pixels, file names
with line breaks, commas, quotes and bytes that are not UTF-8, awkward but valid images) and a set of hostile
situations (a file deleted after training, a truncated checkpoint, an impossible opset, an infinite learning rate,
two launches into one run dir, a sweep with a failing job, hand-edited split files), runs each through train.py,
eval.py, predict.py or export.py in a subprocess under a memory limit, and prints one row per case:

    input | command | outcome | peak memory | seconds

Outcomes: ``trained, skipped and listed`` / ``read as an image`` / ``refused with named error`` (exit code non-zero
and the message names the file, key or cause) / ``CRASH`` (killed, out of memory, or an error that names nothing) /
``HANG`` (past the timeout). The script exits 1 on any CRASH or HANG; tests/reliability/test_red_team.py runs it.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "data.image_size=32",
    "data.batch_size=8",
    "data.num_workers=0",
    "data.val_fraction=0.2",
    "data.test_fraction=0.2",
    "trainer=cpu",
    "trainer.max_epochs=1",
    "scheduler.warmup_epochs=0",
    "plots.enabled=false",
    "~callbacks.progress_bar",
    "+trainer.enable_progress_bar=false",
    "+trainer.enable_model_summary=false",
]
CRASH, HANG = "CRASH", "HANG"


# --- the corpus ----------------------------------------------------------------------------------------------


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def _png(width: int, height: int, bomb: bool = False) -> bytes:
    """A valid grey PNG of any size whose pixels compress to almost nothing; ``bomb``: the header alone."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = b"" if bomb else zlib.compress((b"\0" + b"\x80" * width) * height, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def _float_tiff(value: float) -> bytes:
    values = np.ones((16, 16), np.float32)
    values[3, 4] = value
    return _encode(Image.fromarray(values, mode="F"), "TIFF")


def _noise(seed: int, size: int = 40) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size, size, 3), np.uint8))


JPEG = _encode(_noise(1), "JPEG")
PNG = _encode(_noise(2), "PNG")
EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto 10 10 lineto stroke showpage\n"

# Files that must never be trained on: each is skipped and listed, or refused with its name.
HOSTILE = {
    "empty.jpg": b"",
    "random-bytes.png": np.random.default_rng(3).integers(0, 256, 4096, np.uint8).tobytes(),
    "text-named.png": b"notes saved with the wrong name\n",
    "error-page.jpg": b"<html><body>404 Not Found</body></html>",
    "truncated.jpg": JPEG[: len(JPEG) // 2],
    "truncated.png": PNG[: len(PNG) // 2],
    "bomb-100000x100000.png": _png(100_000, 100_000, bomb=True),
    "postscript-named.jpg": EPS,
    "strip-1x20000.png": _png(1, 20_000),
    "strip-20000x1.png": _png(20_000, 1),
    "nan-pixels.tif": _float_tiff(float("nan")),
    "inf-pixels.tif": _float_tiff(float("inf")),
}
# Awkward but valid: each must be read and trained on.
VALID = {
    "comma, in name.png": PNG,
    'quote " in name.png': PNG,
    "line\nbreak.png": PNG,
    "carriage\rreturn.png": PNG,
    os.fsdecode(b"latin1-caf\xe9.png"): PNG,
    "12-bit-in-16.png": _encode(Image.fromarray(np.arange(4096, dtype=np.uint16).reshape(64, 64)), "PNG"),
    "cmyk.jpg": _encode(Image.new("CMYK", (24, 24), (0, 255, 255, 0)), "JPEG"),
    "gif-named.jpg": _encode(_noise(4), "GIF"),
    "one-pixel.png": _encode(Image.new("RGB", (1, 1), (1, 2, 3)), "PNG"),
    "line-scan-80x1.png": _png(8_000, 100),
    "IMG_0001.HEIC": b"",  # filled by _phone_photos: pillow-heif writes it
    "phone.avif": b"",
}


def _phone_photos() -> None:
    from pillow_heif import register_heif_opener

    register_heif_opener()
    VALID["IMG_0001.HEIC"] = _encode(_noise(5), "HEIF")
    VALID["phone.avif"] = _encode(_noise(6), "AVIF")


def make_corpus(root: Path) -> Path:
    """``root/{cat,dog,fox}``: 12 plain images each; cat also holds every hostile and valid oddity above."""
    for k, label in enumerate(("cat", "dog", "fox")):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(12):
            _noise(100 * k + i, 36).save(root / label / f"{i:02d}.png")
    for name, data in {**HOSTILE, **VALID}.items():
        (root / "cat" / name).write_bytes(data)
    return root


# --- running a case ------------------------------------------------------------------------------------------


@dataclass
class Result:
    code: int | None  # None: killed at the timeout
    output: str
    seconds: float
    peak_mb: float


def run_command(args: list[str], cwd: Path, *, timeout: float, memory_gb: float, env: dict[str, str]) -> Result:
    """Runs ``python <args>`` in its own process group under an address-space limit; peak RSS from wait4."""
    limit = int(memory_gb * 2**30)

    def limits() -> None:
        os.setsid()
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    with tempfile.TemporaryFile(mode="w+b") as log:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, stdout=log, stderr=log, preexec_fn=limits)
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)  # wait4: the child's peak memory comes with its exit status
        timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        log.seek(0)
        output = log.read().decode("utf-8", "replace")
    return Result(None if killed.is_set() else proc.returncode, output, seconds, usage.ru_maxrss / 1024)


def classify(result: Result, *, refused_if: str | None) -> str:
    """The outcome of a command expected to succeed (``refused_if`` None) or to be refused naming ``refused_if``."""
    if result.code is None:
        return HANG
    if result.code < 0 or "MemoryError" in result.output or "Killed" in result.output:
        return CRASH
    if refused_if is None:
        return "ok" if result.code == 0 else CRASH
    return "refused with named error" if result.code != 0 and refused_if in result.output else CRASH


@dataclass
class Row:
    input: str
    command: str
    outcome: str
    peak_mb: float | None = None
    seconds: float | None = None


@dataclass
class Bench:
    work: Path
    timeout: float
    memory_gb: float
    rows: list[Row] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        env = {**os.environ, "TRANSFERLAB_CACHE": str(self.work / "cache"), "HYDRA_FULL_ERROR": "1"}
        env.pop("PYTHONWARNINGS", None)
        return env

    def run(self, script: str, *args: str, as_user: bool = False) -> Result:
        """``python <script> <args>``; ``as_user``: without HYDRA_FULL_ERROR, as a user runs it (errors untraced)."""
        env = {k: v for k, v in self.env.items() if k != "HYDRA_FULL_ERROR"} if as_user else self.env
        return run_command(
            [str(REPO / script), *args], self.work, timeout=self.timeout, memory_gb=self.memory_gb, env=env
        )

    def user_error(self, name: str, command: str, result: Result, *named: str) -> None:
        """A case the user must fix: exit 1 and one ``Error: …`` message naming each of `named`, no traceback."""
        outcome = classify(result, refused_if="Error: ")
        message = next((line for line in result.output.splitlines() if line.startswith("Error: ")), "")
        if outcome != CRASH and ("Traceback" in result.output or not all(n in result.output for n in named)):
            outcome = CRASH + " (traceback, or the message does not name " + ", ".join(named) + ")"
        if outcome == "refused with named error":
            outcome = "refused: " + printable(message[7:110]) + ("…" if len(message) > 110 else "")
        self.add(name, command, result, outcome)

    def add(self, name: str, command: str, result: Result, outcome: str) -> None:
        self.rows.append(Row(name, command, outcome, result.peak_mb, result.seconds))

    def case(self, name: str, command: str, result: Result, refused_if: str | None = None, ok: str = "ok") -> str:
        outcome = classify(result, refused_if=refused_if)
        self.add(name, command, result, ok if outcome == "ok" else outcome)
        return outcome


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8", errors="surrogateescape") as file:
        return list(csv.DictReader(file))


def read_skipped(path: Path) -> dict[str, str]:
    return {row["path"]: row["reason"] for row in read_csv(path)} if path.is_file() else {}


def printable(name: str) -> str:
    return name.encode("unicode_escape", "backslashreplace").decode("ascii").replace("|", "\\|")


# --- the cases -----------------------------------------------------------------------------------------------


def corpus_cases(bench: Bench, corpus: Path) -> Path:
    """Training on the corpus (skip, then error), predicting on it; returns the run dir of the skip run."""
    run_dir = bench.work / "run"
    result = bench.run("train.py", f"data.root={corpus}", *TINY, f"hydra.run.dir={run_dir}")
    outcome = classify(result, refused_if=None)
    skipped = read_skipped(run_dir / "skipped_images.csv")
    for name in HOSTILE:
        listed = f"cat/{name}" in skipped
        row = "trained, skipped and listed" if outcome == "ok" and listed else (outcome if outcome != "ok" else CRASH)
        bench.add(f"{printable(name)} ({skipped.get(f'cat/{name}', 'not listed')})", "train.py (skip)", result, row)
    for name in VALID:
        row = "read as an image" if outcome == "ok" and f"cat/{name}" not in skipped else CRASH
        bench.add(printable(name), "train.py (skip)", result, row)

    strict = bench.work / "run-strict"
    result = bench.run(
        "train.py", f"data.root={corpus}", "data.bad_images=error", "data.verify=full", *TINY, f"hydra.run.dir={strict}"
    )
    named = all(printable(name)[:20] in printable(result.output) for name in HOSTILE)
    bench.case("every hostile file at once", "train.py data.bad_images=error", result, "cannot be read as images")
    if not named:
        bench.rows[-1].outcome = CRASH + " (not every bad file named)"

    result = bench.run("predict.py", f"ckpt_path={best_checkpoint(run_dir)}", f"input={corpus / 'cat'}", "top_k=2")
    listed = read_predictions_errors(run_dir)
    outcome = classify(result, refused_if=None)
    ok = outcome == "ok" and all(f"cat/{name}" in listed or name in listed for name in HOSTILE)
    bench.add("the whole corpus", "predict.py", result, "predicted, bad files listed with an error" if ok else CRASH)
    return run_dir


def best_checkpoint(run_dir: Path) -> Path:
    found = sorted((run_dir / "checkpoints").glob("best-*.ckpt"))
    return found[0] if found else run_dir / "checkpoints" / "missing.ckpt"


def read_predictions_errors(run_dir: Path) -> set[str]:
    rows = [row for path in (run_dir / "predict").glob("*/predictions.csv") for row in read_csv(path)]
    return {Path(row["path"]).name for row in rows if row.get("error")}


def after_the_run_cases(bench: Bench, corpus: Path, run_dir: Path) -> None:
    """Files deleted after training, a truncated checkpoint, an impossible opset."""
    rows = read_csv(run_dir / "splits.csv")
    plain = re.compile(r"\w+/\d\d\.png")
    test_image = next(row["path"] for row in rows if row["split"] == "test" and plain.fullmatch(row["path"]))
    (corpus / test_image).rename(bench.work / "moved-away.png")
    result = bench.run("eval.py", f"ckpt_path={best_checkpoint(run_dir)}")
    listed = test_image in read_skipped(run_dir / "eval" / "test" / "skipped_images.csv")
    bench.case("test image deleted after training", "eval.py", result, ok="evaluated, skipped and listed")
    if bench.rows[-1].outcome != CRASH and not listed:
        bench.rows[-1].outcome = CRASH + " (not listed)"
    result = bench.run("eval.py", f"ckpt_path={best_checkpoint(run_dir)}", "data.bad_images=error")
    bench.case("test image deleted after training", "eval.py data.bad_images=error", result, test_image)

    resumed = bench.work / "resumed"
    shutil.copytree(run_dir, resumed, ignore=shutil.ignore_patterns("eval", "predict", ".transferlab.lock*"))
    (resumed / "metrics.json").unlink()
    result = bench.run("train.py", f"data.root={corpus}", *TINY, f"hydra.run.dir={resumed}", "ckpt_path=auto")
    bench.case("split image deleted, then resumed", "train.py ckpt_path=auto", result, ok="trained, skipped and listed")
    if test_image not in read_skipped(resumed / "skipped_images.csv") and bench.rows[-1].outcome != CRASH:
        bench.rows[-1].outcome = CRASH + " (not listed)"

    truncated = bench.work / "truncated"
    shutil.copytree(run_dir, truncated, ignore=shutil.ignore_patterns("eval", "predict", ".transferlab.lock*"))
    (truncated / "metrics.json").unlink()
    last = truncated / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 3])
    result = bench.run("train.py", f"data.root={corpus}", *TINY, f"hydra.run.dir={truncated}", "ckpt_path=auto")
    bench.case("last.ckpt cut short", "train.py ckpt_path=auto", result, "corrupt or incomplete checkpoint")

    result = bench.run("export.py", f"ckpt_path={best_checkpoint(run_dir)}", "opset=13")
    bench.case("opset the exporter cannot write", "export.py opset=13", result, "could not convert this model")


def run_cases(bench: Bench, corpus: Path) -> None:
    """Settings and situations: infinite learning rate, two launches at once, failing sweep job, split files."""
    clean = bench.work / "clean"  # the plain images only
    plain = re.compile(r"\d\d\.png")
    for label in ("cat", "dog", "fox"):
        shutil.copytree(
            corpus / label, clean / label, ignore=lambda _, names: [n for n in names if not plain.fullmatch(n)]
        )
    result = bench.run(
        "train.py", f"data.root={clean}", *TINY, "optimizer.lr=inf", f"hydra.run.dir={bench.work / 'inf'}", as_user=True
    )
    bench.user_error("optimizer.lr=inf", "train.py", result, "at epoch 0", "optimizer.lr")

    busy = bench.work / "busy"
    first = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "train.py"),
            f"data.root={clean}",
            *TINY,
            "trainer.max_epochs=30",
            f"hydra.run.dir={busy}",
        ],
        cwd=bench.work,
        env=bench.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.time() + bench.timeout
        while not (busy / ".transferlab.lock.json").exists() and time.time() < deadline and first.poll() is None:
            time.sleep(0.5)
        result = bench.run("train.py", f"data.root={clean}", *TINY, f"hydra.run.dir={busy}")
        bench.case("a second launch into a busy run dir", "train.py", result, "is in use by another run")
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()

    sweep = bench.work / "sweep"
    result = bench.run(
        "train.py",
        "-m",
        f"data.root={clean}",
        *TINY,
        "optimizer.lr=0.001,-1",  # the second job's config is refused inside the job: it fails, the sweep goes on
        f"hydra.sweep.dir={sweep}",
    )
    bench.case("a sweep with a job that fails", "train.py -m", result, "job(s) of the sweep")

    for name, body in {
        "splits.csv with an unknown split": "cat/00.png,cat,holdout\n",
        "splits.csv listing a row twice": "cat/00.png,cat,train\ncat/00.png,cat,train\n",
    }.items():
        path = bench.work / f"{name.replace(' ', '_')}.csv"
        path.write_text("path,class,split\n" + body + "dog/00.png,dog,train\nfox/00.png,fox,train\n")
        result = bench.run(
            "train.py",
            f"data.root={clean}",
            *TINY,
            f"data.splits_file={path}",
            f"hydra.run.dir={bench.work / path.stem}",
        )
        bench.case(name, "train.py data.splits_file=…", result, "line 2" if "unknown" in name else "listed again")


def _photo(path: Path, seed: int, size: int = 36) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _noise(seed, size).save(path)


def messy_folder(root: Path) -> Path:
    """A photo folder as users' folders are: 7 classes (so top-5 accuracy is logged beside macro F1), one named in
    Chinese, the leftovers of archives and NAS boxes, class and file links that would count images twice."""
    for k, label in enumerate(("cat", "dog", "fox", "owl", "eel", "yak", "猫")):
        for i in range(10):
            _photo(root / label / f"{i:02d}.png", 1000 + 20 * k + i)
    _photo(root / "__MACOSX" / "cat" / "._00.png", 1)
    (root / "__MACOSX" / "cat" / "._00.png").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    _photo(root / "cat" / "@eaDir" / "00.png" / "SYNOFILE_THUMB_M.jpg", 2)
    _photo(root / ".ipynb_checkpoints" / "x.png", 3)
    _photo(root / "$RECYCLE.BIN" / "old.png", 4)
    (root / "cat" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    os.symlink("cat", root / "kitty")
    os.symlink(".", root / "all")
    os.symlink("../cat/01.png", root / "dog" / "also-a-cat.png")
    return root


def real_folder_cases(bench: Bench) -> None:
    """One training run on a messy folder and one on a spreadsheet-exported label file; a row per oddity."""
    import json

    folder = messy_folder(bench.work / "messy")
    run_dir = bench.work / "messy-run"
    result = bench.run("train.py", f"data.root={folder}", *TINY, "plots.enabled=true", f"hydra.run.dir={run_dir}")
    outcome = classify(result, refused_if=None)
    metrics = json.loads((run_dir / "metrics.json").read_text()) if outcome == "ok" else {}
    splits = read_csv(run_dir / "splits.csv") if outcome == "ok" else []
    paths = {row["path"] for row in splits}
    classes = metrics.get("class_names", [])

    def row(name: str, passed: bool, what: str) -> None:
        bench.add(
            name, "train.py", result, what if outcome == "ok" and passed else (CRASH if outcome == "ok" else outcome)
        )

    row(
        "__MACOSX/, @eaDir/ thumbnails, .ipynb_checkpoints/, $RECYCLE.BIN/, Thumbs.db",
        not any(part in path for path in paths for part in ("__MACOSX", "@eaDir", "ipynb", "RECYCLE", "Thumbs"))
        and "__MACOSX" not in classes
        and "ignored ['$RECYCLE.BIN', '@eaDir', '__MACOSX']" in result.output,
        "ignored, named in one log line",
    )
    row(
        "class folder links kitty -> cat, all -> .",
        classes == sorted(["cat", "dog", "fox", "owl", "eel", "yak", "猫"]) and "not followed" in result.output,
        "not followed, named in the log",
    )
    row(
        "dog/also-a-cat.png -> ../cat/01.png",
        "dog/also-a-cat.png" not in paths and "cat/01.png" in paths,
        "one image, kept at its first path",
    )
    f1 = None
    if outcome == "ok":
        from sklearn.metrics import f1_score

        predictions = read_csv(run_dir / "predictions.csv")
        f1 = f1_score(
            [r["true"] for r in predictions],
            [r["predicted"] for r in predictions],
            average="macro",
            labels=classes,
            zero_division=0,
        )
    row(
        "7 classes: macro F1 beside top-5 accuracy",
        f1 is not None and abs(metrics["test_f1"] - f1) < 1e-6,
        f"test_f1 {metrics.get('test_f1', float('nan')):.4f} = scikit-learn's from predictions.csv",
    )
    row(
        "the confusion matrix",
        (run_dir / "confusion_matrix.csv").is_file()
        and "test_confusion_matrix" not in metrics
        and len((run_dir / "metrics.json").read_text().splitlines()) < 200
        if outcome == "ok"
        else False,
        "in confusion_matrix.csv beside metrics.json",
    )
    row(
        "a class named 猫 in the plots",
        (run_dir / "plots" / "confusion_matrix.png").is_file() and "Glyph" not in result.output,
        "drawn by a font that has it, or as #6 with a note; no glyph warnings",
    )

    labelled = bench.work / "labelled"
    for i in range(8):
        for label in ("café", "tea", "rum"):
            _photo(labelled / "img" / unicodedata.normalize("NFD", f"{label}{i}.png"), hash((label, i)) % 999)
    lines = [";path;label"] + [
        f"{n};img\\{unicodedata.normalize('NFC', f'{label}{i}.png')};{label}"
        for n, (label, i) in enumerate((label, i) for i in range(8) for label in ("café", "tea", "rum"))
    ]
    (labelled / "labels.csv").write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    run_dir = bench.work / "labelled-run"
    result = bench.run("train.py", f"data.labels_file={labelled / 'labels.csv'}", *TINY, f"hydra.run.dir={run_dir}")
    outcome = classify(result, refused_if=None)
    splits = read_csv(run_dir / "splits.csv") if outcome == "ok" else []
    row(
        "label CSV from Excel: BOM, ; separator, pandas' unnamed index",
        len(splits) == 24 and "dropped its unnamed first column" in result.output,
        "read as intended, the index named in the log",
    )
    row(
        "label CSV with Windows paths img\\café0.png",
        "with backslashes as folder separators" in result.output and len(splits) == 24,
        "read as folder separators, said once",
    )
    row(
        "café in the CSV (NFC), café on disk (NFD, as macOS writes)",
        "in Unicode form NFD" in result.output and len(splits) == 24,
        "the same file",
    )


def user_mistake_cases(bench: Bench, corpus: Path) -> None:
    """Mistakes in data and settings: each an ``Error: …`` line naming what to fix, exit code 1, no traceback."""
    clean = bench.work / "clean"
    cased = bench.work / "cased"
    for label in ("Cat", "cat", "dog"):
        for i in range(6):
            _photo(cased / label / f"{i}.png", i)
    missing = bench.work / "missing-class"
    rows = ["path,label"]
    for i in range(6):
        _photo(missing / f"cat{i}.png", i)
        _photo(missing / f"dog{i}.png", 10 + i)
        rows += [f"cat{i}.png,cat", f"dog{i}.png,dog", f"renamed/owl{i}.png,owl"]
    (missing / "labels.csv").write_text("\n".join(rows) + "\n")
    unreadable = bench.work / "unreadable-class"
    shutil.copytree(clean, unreadable)
    for path in (unreadable / "fox").iterdir():
        path.write_bytes(b"<html>not an image</html>")
    small = bench.work / "small-classes"
    for k, label in enumerate(("big", "rare1", "rare2")):
        for i in range(20 if label == "big" else 2):
            _photo(small / label / f"{i}.png", 50 * k + i)

    # (the case, its train.py overrides, what the message must name)
    mistakes = [
        ("class folders Cat/ and cat/", [f"data.root={cased}"], ["Cat", "data.merge_case"]),
        (
            "a label file whose class 'owl' points only to missing files",
            [f"data.labels_file={missing / 'labels.csv'}"],
            ["'owl'"],
        ),
        ("a class folder of unreadable files (data.verify=auto)", [f"data.root={unreadable}"], ["'fox'"]),
        ("data.root that is not a folder", [f"data.root={bench.work / 'no-such-folder'}"], ["no-such-folder"]),
        (
            "data.batch_size=1 with BatchNorm",
            [f"data.root={clean}", "data.batch_size=1"],
            ["data.batch_size=1", "feature_extraction"],
        ),
        (
            "trainer.max_epochs=-1 with a cosine schedule",
            [f"data.root={clean}", "trainer.max_epochs=-1"],
            ["trainer.max_epochs"],
        ),
        ("two classes too small for the split", [f"data.root={small}"], ["'rare1'", "'rare2'"]),
    ]
    for number, (name, overrides, named) in enumerate(mistakes):
        run_dir = bench.work / f"mistake-{number}"
        result = bench.run("train.py", *TINY, *overrides, f"hydra.run.dir={run_dir}", as_user=True)
        bench.user_error(name, "train.py", result, *named)

    result = bench.run(
        "predict.py",
        f"ckpt_path={best_checkpoint(bench.work / 'run')}",
        f"input={bench.work / 'no-such-photos'}",
        as_user=True,
    )
    bench.user_error("predict input= that does not exist", "predict.py", result, "no-such-photos")


def render(rows: list[Row]) -> str:
    lines = ["| input | command | outcome | peak memory | seconds |", "|---|---|---|---:|---:|"]
    for row in rows:
        memory = "" if row.peak_mb is None else f"{row.peak_mb:,.0f} MB"
        seconds = "" if row.seconds is None else f"{row.seconds:.0f}"
        lines.append(f"| {row.input} | `{row.command}` | {row.outcome} | {memory} | {seconds} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per command before it counts as a HANG")
    parser.add_argument("--memory-gb", type=float, default=6.0, help="address-space limit of each command")
    args = parser.parse_args(argv)
    work = args.out or Path(tempfile.mkdtemp(prefix="red-team-"))
    work.mkdir(parents=True, exist_ok=True)
    bench = Bench(work.resolve(), args.timeout, args.memory_gb)
    _phone_photos()
    corpus = make_corpus(bench.work / "corpus")
    run_dir = corpus_cases(bench, corpus)
    after_the_run_cases(bench, corpus, run_dir)
    run_cases(bench, corpus)
    real_folder_cases(bench)
    user_mistake_cases(bench, corpus)
    print(render(bench.rows))
    bad = [row for row in bench.rows if row.outcome.startswith((CRASH, HANG))]
    print(f"\n{len(bench.rows)} cases, {len(bad)} CRASH or HANG; work folder {bench.work}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""Do two versions of transferlab write the same files? Runs train, a sweep (summary + report), eval, predict,
export and the probe at tiny size through the real command lines, then compares every file they wrote.

    uv run python bench/same_outputs.py --against HEAD~3     # that commit (a git worktree) vs this tree
    uv run python bench/same_outputs.py --snapshot out.json  # this tree's outputs, as a manifest
    uv run python bench/same_outputs.py --compare a.json b.json

Kept for refactors that must not change any output. Both versions run in the same folder (``--work``), on the same
generated images and weights file, so absolute paths inside the outputs agree. Files are compared after removing
what legitimately differs between two runs of the same code: timestamps, durations, throughput, process ids (JSON
keys and CSV columns named for them, and the ``[time][logger][level]`` prefix of log lines); checkpoints by their
tensors and hyperparameters (their pickles hold timings); YAML as the mapping it holds (key order aside);
TorchScript archives without their debug records (the source file and line of each traced call); the report's
figure (it draws fit times) by its presence; module paths this tree has moved (``transferlab.runs.legacy``: a
config's ``_target_``, a report's ``python -m`` line) by their new names; other PNGs and everything else byte for
byte.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
TIMING_KEY = re.compile(r"(time|seconds|duration|_s$|per_s|per_second|img_s|date|pid|host|elapsed|started|finished)")
LOG_PREFIX = re.compile(r"^\[[^\]]*\]\[[^\]]*\]\[[A-Z]+\] - ")
# Log text that measures the machine, not the result.
LOG_TIMING = re.compile(r"\d+(\.\d+)? ?(s|ms|min|images/s|img/s|it/s)\b")
MANGLED = re.compile(rb"___torch_mangle_\d+")
# Figures that draw durations (the report's cost panel): compared by their presence only.
TIMED_FIGURES = {"report.png"}


def _renamed_modules() -> dict[str, str]:
    """Modules this tree has moved (``transferlab.runs.legacy``; none in a tree without it): their old names in
    either version's outputs (a config's ``_target_``, a report's ``python -m`` line) read as the new ones."""
    try:
        from transferlab.runs.legacy import RENAMED_MODULES
    except ImportError:
        return {}
    return RENAMED_MODULES


RENAMED = _renamed_modules()
OLD_NAME = re.compile("|".join(rf"{re.escape(old)}(?![\w])" for old in RENAMED) or "(?!)")


def renamed(text: str) -> str:
    return OLD_NAME.sub(lambda m: RENAMED[m.group()], text)


TINY = [
    "data.image_size=32",
    "data.batch_size=8",
    "data.num_workers=0",
    "trainer=cpu",
    "trainer.max_epochs=2",
    "progress=lines",
    "+trainer.enable_model_summary=false",
    "plots.worst=4",
    "plots.samples=4",
]


def make_inputs(work: Path) -> tuple[Path, Path]:
    """Images (3 classes x 12, sizes 40-70 px, PNG and JPEG) and a random ResNet-18 weights file, from fixed seeds."""
    import torch
    from torchvision.models import resnet18

    data = work / "images"
    rng = np.random.default_rng(0)
    for label, colour in (("red", 0), ("green", 1), ("blue", 2)):
        (data / label).mkdir(parents=True)
        for i in range(12):
            size = int(rng.integers(40, 71))
            pixels = rng.integers(0, 90, (size, size, 3), dtype=np.uint8)
            pixels[..., colour] += 150
            suffix = ".png" if i % 2 else ".jpg"
            Image.fromarray(pixels).save(data / label / f"{label} {i}{suffix}")
    torch.manual_seed(0)
    weights = work / "resnet18-random.pth"
    torch.save(resnet18().state_dict(), weights)
    return data, weights


def run_commands(code: Path, work: Path) -> None:
    """Every command, as a user types it, run from `code` (a checkout) with outputs under `work`/out."""
    data, weights = make_inputs(work)
    out = work / "out"
    env = {**os.environ, "PYTHONPATH": str(code / "src"), "OMP_NUM_THREADS": "1", "TRANSFERLAB_CACHE": str(work)}
    common = [f"data.root={data}", "data.val_fraction=0.25", "data.test_fraction=0.25", *TINY]

    def python(script: str, *args: str) -> None:
        command = [sys.executable, str(code / script), *args]
        done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-4000:]}")

    run = out / "train"
    python("train.py", *common, "strategy=finetune", f"model.pretrained={weights}", f"hydra.run.dir={run}")
    sweep = out / "sweep"
    python(
        "train.py", "-m", *common, "strategy=scratch,feature_extraction", f"model.pretrained={weights}",
        "trainer.max_epochs=1", f"hydra.sweep.dir={sweep}",
    )  # fmt: skip
    best = next((run / "checkpoints").glob("best-*.ckpt"))
    python("eval.py", f"ckpt_path={best}")
    python("eval.py", f"ckpt_path={best}", "split=val", "tta=true")
    python("predict.py", f"ckpt_path={best}", f"input={data / 'red'}", f"hydra.run.dir={out / 'predict'}")
    python("export.py", f"ckpt_path={best}", "format=[onnx,torchscript]")
    python(
        "probe.py", "data=folder", f"data.root={data}", "data.image_size=32", "data.num_workers=0",
        "data.val_fraction=0.25", "data.test_fraction=0.25", f"model.pretrained={weights}", "device=cpu",
        f"hydra.run.dir={out / 'probe'}",
    )  # fmt: skip


def _drop_timing(value):
    if isinstance(value, dict):
        return {k: _drop_timing(v) for k, v in value.items() if not TIMING_KEY.search(str(k).lower())}
    if isinstance(value, list):
        return [_drop_timing(v) for v in value]
    return value


def _digest(path: Path, code: Path) -> str:
    """What must not change in one output file, hashed; ``code`` (the checkout that ran) stands as ``<code>`` in
    text files, as Hydra records where its configs came from."""
    suffix = path.suffix.lower()
    if path.name in TIMED_FIGURES:
        return "exists"
    if suffix == ".ckpt":
        return _checkpoint_digest(path)
    if suffix == ".pt" and zipfile.is_zipfile(path):
        return _torchscript_digest(path)
    if suffix not in (".json", ".yaml", ".csv", ".log", ".md"):
        return _hash(path.read_bytes())
    text = renamed(path.read_text().replace(str(code), "<code>"))
    if suffix == ".json":
        return _hash(json.dumps(_drop_timing(json.loads(text)), sort_keys=True))
    if suffix == ".yaml":  # Hydra's records and Lightning's hparams: the mapping, not the order of its keys
        import yaml

        return _hash(json.dumps(yaml.safe_load(text), sort_keys=True, default=str))
    if suffix == ".csv":
        import pandas as pd

        table = pd.read_csv(io.StringIO(text), keep_default_na=False, dtype=str)
        table = table[[c for c in table.columns if not TIMING_KEY.search(c.lower())]]
        return _hash(table.to_csv(index=False))
    return _hash("\n".join(LOG_TIMING.sub("<t>", LOG_PREFIX.sub("", line)) for line in text.splitlines()))


def _torchscript_digest(path: Path) -> str:
    """A TorchScript archive without its ``*.debug_pkl`` members (they record the source file and line of every
    traced call, which move with the code) and the ``serialization_id`` computed over them, and with its mangled
    class names numbered in order of appearance (the counter counts every class TorchScript compiled earlier in the
    process, e.g. at another library's import)."""
    with zipfile.ZipFile(path) as archive:
        members = sorted(n for n in archive.namelist() if not n.endswith((".debug_pkl", "/.data/serialization_id")))
        content = b"".join(name.encode() + archive.read(name) for name in members)
    numbers: dict[bytes, bytes] = {}
    return _hash(MANGLED.sub(lambda m: numbers.setdefault(m.group(), b"<%d>" % len(numbers)), content))


def _checkpoint_digest(path: Path) -> str:
    import torch

    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    parts = [renamed(repr(_drop_timing(json.loads(json.dumps(checkpoint.get("hyper_parameters", {}), default=str)))))]
    for name, tensor in checkpoint["state_dict"].items():
        buffer = io.BytesIO()
        np.save(buffer, tensor.detach().cpu().float().numpy() if tensor.is_floating_point() else tensor.numpy())
        parts.append(f"{name}:{_hash(buffer.getvalue())}")
    parts.append(f"epoch={checkpoint.get('epoch')} step={checkpoint.get('global_step')}")
    return _hash("\n".join(parts))


def _hash(content: str | bytes) -> str:
    return hashlib.sha256(content.encode() if isinstance(content, str) else content).hexdigest()[:16]


def manifest(out: Path, code: Path) -> dict[str, str]:
    """{path relative to out: digest} for every file the commands that ``code`` ran wrote."""
    files = sorted(p for p in out.rglob("*") if p.is_file())
    return {str(p.relative_to(out)): _digest(p, code) for p in files}


def snapshot(code: Path, work: Path) -> dict[str, str]:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    run_commands(code, work)
    return manifest(work / "out", code)


def compare(before: dict[str, str], after: dict[str, str]) -> list[str]:
    differences = [f"only before: {p}" for p in sorted(before.keys() - after.keys())]
    differences += [f"only after:  {p}" for p in sorted(after.keys() - before.keys())]
    differences += [f"differs:     {p}" for p in sorted(before.keys() & after.keys()) if before[p] != after[p]]
    return differences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", help="a git commit to compare this tree with")
    parser.add_argument("--snapshot", type=Path, help="write this tree's manifest here")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "transferlab-same-outputs")
    args = parser.parse_args()
    if args.compare:
        before, after = (json.loads(p.read_text()) for p in args.compare)
    elif args.snapshot:
        args.snapshot.write_text(json.dumps(snapshot(REPO, args.work), indent=1))
        print(f"{args.snapshot}: {len(json.loads(args.snapshot.read_text()))} files")
        return
    elif args.against:
        checkout = Path(tempfile.mkdtemp()) / "before"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(checkout), args.against], check=True)
        try:
            before = snapshot(checkout, args.work)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(checkout)], check=True)
        kept = args.work.with_name(args.work.name + "-before")  # the older version's outputs, to look into
        shutil.rmtree(kept, ignore_errors=True)
        shutil.move(args.work / "out", kept)
        after = snapshot(REPO, args.work)
    else:
        parser.error("one of --against, --snapshot, --compare")
    differences = compare(before, after)
    print(f"{len(before)} files before, {len(after)} after, {len(differences)} differences")
    print("\n".join(differences))
    sys.exit(1 if differences else 0)


if __name__ == "__main__":
    main()

"""The OmegaConf resolvers of transferlab's configs, importing nothing heavy; :func:`register_resolvers` (called by
``startup.prepare``, first thing in every entry script) registers them, so Hydra can resolve the configs
(``--help``, ``--cfg``, shell completion, the run dir) before torch or Lightning is imported. All names are prefixed
``transferlab.``; the one older name (``best_mixed_precision``) stays registered so that run dirs saved before the
rename still resume.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from transferlab.runs.layout import CONFIG_FILE, HYDRA_DIR, run_dir_of


def best_mixed_precision() -> str:
    """bf16-mixed where the GPU supports it (Ampere and later), else 16-mixed; used by ``trainer=gpu``."""
    import torch  # resolved when the Trainer is built, when torch is imported anyway

    return "bf16-mixed" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "16-mixed"


def beside_run(ckpt_path: Any, subdir: str, fallback: str) -> str:
    """Where eval/predict/export write: ``<run_dir>/<subdir>`` for an existing checkpoint inside a run, else
    ``fallback`` (Hydra's own ``outputs/…`` folder). The configs use it as ``${transferlab.beside_run:…}``.
    """
    if ckpt_path:
        path = Path(str(ckpt_path)).expanduser()
        run_dir = run_dir_of(path)
        if run_dir is not None and path.is_file():
            return str(run_dir / subdir)
    return str(fallback)


def eval_split(split: str | None, data_root: str | Path | None) -> str:
    """eval's ``split`` when it is left out: ``all`` (every image) of a folder given as ``data.root``, else ``test``.

    The config names eval's output folder ``eval/<this>`` with it, as ``${transferlab.eval_split:…}``.
    """
    return split or ("all" if data_root else "test")


_FRESH: set[str] = set()  # run dirs for which hydra_subdir answered ".hydra" in this process


def hydra_subdir(output_dir: str) -> str | None:
    """``hydra.output_subdir`` of train.py: ``.hydra`` for a new run dir, None (Hydra saves nothing) for one that
    already holds a run's ``.hydra/config.yaml``, which a re-launch must never overwrite: ``resume.py`` decides what
    such a launch does and writes its own config beside the original (``.hydra/resume-<n>/``)."""
    key = str(Path(output_dir).absolute())
    if key in _FRESH or not (Path(output_dir) / CONFIG_FILE).is_file():
        _FRESH.add(key)  # asked again after Hydra has written it, the answer stays the same
        return HYDRA_DIR
    return None


def launched_fresh(output_dir: str) -> bool:
    """Whether Hydra saved ``.hydra/`` into `output_dir` for this launch (asked once, by ``resume.prepare``)."""
    key = str(Path(output_dir).absolute())
    fresh = key in _FRESH
    _FRESH.discard(key)
    return fresh


RESOLVERS = {
    "transferlab.best_mixed_precision": best_mixed_precision,
    "best_mixed_precision": best_mixed_precision,  # the name before the prefix, in configs saved by older runs
    "transferlab.beside_run": beside_run,
    "transferlab.eval_split": eval_split,
    "transferlab.hydra_subdir": hydra_subdir,
}


def register_resolvers() -> None:
    """Registers every resolver (again: replacing is harmless)."""
    for name, function in RESOLVERS.items():
        OmegaConf.register_new_resolver(name, function, replace=True)

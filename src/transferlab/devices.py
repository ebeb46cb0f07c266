"""Owns where work runs: the torch device of the commands that run a trained model (eval, predict, the probe) and
the number of data-loader processes (training's ``data.num_workers`` and theirs)."""

from __future__ import annotations

import os

import torch


def resolve_device(device: str) -> torch.device:
    """``"auto"``: CUDA when there is a GPU, else Apple's MPS, else the CPU; otherwise any torch device string."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    return torch.device(device)


def default_num_workers() -> int:
    """One loader worker per core this process may use, at most 8 (more rarely helps a single GPU)."""
    return min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 8)


def resolve_num_workers(num_workers: int | str, key: str = "num_workers") -> int:
    """``auto``: :func:`default_num_workers`; else a non-negative integer, checked (``key`` names it in the error)."""
    if num_workers == "auto":
        return default_num_workers()
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"{key}={num_workers!r} must be a non-negative integer or auto")
    return num_workers

"""Owns the dotted-key view of a nested config: ``{"data": {"root": x}}`` ↔ ``{"data.root": x}``, for the trackers'
flat parameter lists and resume's comparison of a saved config with a new launch. Imports nothing."""

from __future__ import annotations

from typing import Any


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf of nested dicts by its dotted key under ``prefix``; an empty dict, a list or a scalar is a leaf."""
    out: dict[str, Any] = {}

    def walk(item: Any, key: str) -> None:
        if isinstance(item, dict) and item:
            for name, child in item.items():
                walk(child, f"{key}.{name}" if key else str(name))
        else:
            out[key] = item

    walk(value, prefix)
    return out

"""Fixtures of the reliability tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from .corpus import make_corpus


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """The bad-image corpus (see corpus.py) under tmp_path/corpus."""
    return make_corpus(tmp_path / "corpus")

"""Owns which font draws the class names in figures: class names in scripts the default font lacks (Chinese,
Japanese, Arabic, emoji) are drawn with a font of this system that has their glyphs, through matplotlib's font
fallback (a list of families); a name no font here can draw is shown as its class index (``#3``), with a note
naming where the names are, never as boxes with a warning per glyph.

matplotlib's bundled "Last Resort" font covers every code point with placeholder boxes, so it is no fallback here.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import matplotlib
from matplotlib import font_manager, ft2font

PLACEHOLDER_FONTS = ("Last Resort",)  # boxes for every code point: drawing them is what this module avoids
NAMES_NOTE = "class names with no font on this system; see class_names in metrics.json"


@dataclass(frozen=True)
class LabelFonts:
    """The font families to draw with (the default first, then fallbacks) and each name as it can be drawn."""

    families: tuple[str, ...]
    labels: tuple[str, ...]  # the name, or "#<index>" where no font here has its glyphs
    undrawn: tuple[int, ...]  # indices of the names shown as "#<index>"

    def note(self) -> str:
        """A line for the figure naming the names shown by index; empty when there are none."""
        return f"{', '.join(f'#{i}' for i in self.undrawn)}: {NAMES_NOTE}" if self.undrawn else ""

    @contextlib.contextmanager
    def drawing(self) -> Iterator[None]:
        """Builds and saves a figure inside: these families, and no per-glyph warning for what still lacks one."""
        with matplotlib.rc_context({"font.family": list(self.families)}), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font")
            yield


def label_fonts(names: Sequence[str]) -> LabelFonts:
    """How to draw `names`: the default font where it has every glyph, fonts of this system added for the rest."""
    default = _default_family()
    missing = _code_points(names) - _charmap(font_manager.findfont(font_manager.FontProperties(family=[default])))
    families = [default]
    covered: frozenset[int] = frozenset()
    for name, charmap in _fallback_fonts():
        if missing - covered and charmap & (missing - covered):
            families.append(name)
            covered |= charmap & missing
    drawable = frozenset(covered)
    undrawn = tuple(i for i, name in enumerate(names) if (_code_points([name]) & missing) - drawable)
    labels = tuple(f"#{i}" if i in undrawn else name for i, name in enumerate(names))
    return LabelFonts(tuple(dict.fromkeys(families)), labels, undrawn)


def _default_family() -> str:
    family = matplotlib.rcParams["font.family"]
    return family[0] if isinstance(family, list) else family


def _code_points(texts: Sequence[str]) -> frozenset[int]:
    return frozenset(ord(c) for text in texts for c in text if c.isprintable() and not c.isspace())


@functools.cache
def _charmap(path: str) -> frozenset[int]:
    return frozenset(ft2font.FT2Font(path).get_charmap())


@functools.cache
def _fallback_fonts() -> tuple[tuple[str, frozenset[int]], ...]:
    """Every font family of this system with its code points, largest first (so fewer fonts cover a name)."""
    fonts = {}
    for name in sorted({entry.name for entry in font_manager.fontManager.ttflist}):
        if name.startswith(PLACEHOLDER_FONTS):
            continue
        with contextlib.suppress(Exception):  # a font file matplotlib cannot read is no fallback
            # The file matplotlib draws the family's regular style with: the one the fallback will use.
            path = font_manager.findfont(font_manager.FontProperties(family=[name]), fallback_to_default=False)
            fonts[name] = _charmap(path)
    return tuple(sorted(fonts.items(), key=lambda item: -len(item[1])))

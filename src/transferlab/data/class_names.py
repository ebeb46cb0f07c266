"""Owns the rule for class names that differ only in how they are written: ``Cat`` and ``cat``, or ``café`` in
Unicode's composed (NFC) and decomposed (NFD, as macOS writes file names) forms. Surrounding spaces are already
stripped where labels are read. Such names are one class to a person and two to a classifier, so they are never
trained apart silently: :func:`canonical_names` stops with an error that lists them, or, with
``data.merge_case=true``, reads each group as one class, spelled as its most frequent member is.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping


def folded(name: str) -> str:
    """What two spellings of one class share: the NFC form, case folded."""
    return unicodedata.normalize("NFC", name).casefold()


def canonical_names(counts: Mapping[str, int], *, source: str, merge_case: bool) -> dict[str, str]:
    """Each name of ``counts`` (name → number of images) → the class it belongs to.

    Raises:
        ValueError: names that differ only by case or Unicode form while ``merge_case`` is false; the message lists
            every such group with its image counts, and says how to merge them.
    """
    groups: dict[str, list[str]] = {}
    for name in sorted(counts):
        groups.setdefault(folded(name), []).append(name)
    clashes = [names for names in groups.values() if len(names) > 1]
    if clashes and not merge_case:
        listed = "; ".join(" / ".join(f"{name!r} ({counts[name]} images)" for name in names) for names in clashes)
        raise ValueError(
            f"{source}: class names that differ only by case or Unicode form would train as separate classes: "
            f"{listed}. Rename them to one spelling, or set data.merge_case=true to read each group as one class "
            "(named as its most frequent spelling)."
        )
    mapping = {}
    for names in groups.values():
        # The most frequent spelling names the class; ties go to the first in sorted order.
        chosen = sorted(names, key=lambda name: (-counts[name], name))[0]
        mapping.update({name: chosen for name in names})
    return mapping

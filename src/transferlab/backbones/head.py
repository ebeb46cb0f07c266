"""Owns :class:`Head`, the ``model.head`` config as a typed value: the classifier transferlab puts in place of a
model's own. Imports nothing heavy, so that ``launch.schemas`` can register it before a config is composed; the
layers themselves are built by ``builder.build_head``.
"""

from __future__ import annotations

from dataclasses import dataclass

from transferlab.checks import integer, number


@dataclass(frozen=True)
class Head:
    """A hidden layer (with ReLU) of ``hidden_dim`` units before the classifier, as the Keras recipes'
    ``Dense(256)`` (None: none), and dropout before the last linear layer (0: none)."""

    hidden_dim: int | None = None
    dropout: float = 0.0

    def __post_init__(self) -> None:
        check_head(hidden_dim=self.hidden_dim, dropout=self.dropout)
        object.__setattr__(self, "dropout", float(self.dropout))


def check_head(*, hidden_dim: int | None, dropout: float) -> None:
    """The rules of ``model.head`` (config validation calls this too)."""
    if hidden_dim is not None:
        integer("model.head.hidden_dim", hidden_dim, low=1, hint="or null: no hidden layer")
    number("model.head.dropout", dropout, low=0, high=1, high_open=True)

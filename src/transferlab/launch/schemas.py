"""Owns the structured-config schemas of the config groups whose keys are our settings' fields: ``augment``
(:class:`~transferlab.data.augment.Augment`), ``mixing`` (:class:`~transferlab.training.mixing.Mixing`) and
``model.head`` (:class:`~transferlab.backbones.head.Head`), registered in Hydra's ConfigStore under ``_schemas/``
by :func:`register_schemas` (``startup.prepare`` calls it). The YAML files list them first in their defaults
(``- /_schemas/augment@_here_``), so a wrong type (``augment.hflip=maybe``, ``model.head.dropout=abc``) or an
unknown key fails when the config is composed, naming the key. Ranges are the dataclasses' own checks, at run start.

The settings are frozen dataclasses; OmegaConf makes a node built from a frozen dataclass read-only, which would
refuse every override, so the schema is a mutable copy with the same fields, types and defaults (written here once,
for every setting, since neither Hydra nor OmegaConf derives one). Imports nothing heavy.
"""

from __future__ import annotations

import dataclasses
import typing

from hydra.core.config_store import ConfigStore

from transferlab.backbones.head import Head
from transferlab.data.augment import Augment
from transferlab.training.mixing import Mixing

SCHEMA_GROUP = "_schemas"
SCHEMAS: dict[str, type] = {"augment": Augment, "mixing": Mixing, "head": Head}


def schema_of(settings: type) -> type:
    """A mutable dataclass with the fields, types and defaults of the frozen dataclass ``settings``."""
    hints = typing.get_type_hints(settings)
    fields = [
        (field.name, hints[field.name], dataclasses.field(default=field.default))
        for field in dataclasses.fields(settings)
    ]
    return dataclasses.make_dataclass(f"{settings.__name__}Schema", fields)


def register_schemas() -> None:
    store = ConfigStore.instance()
    for name, settings in SCHEMAS.items():
        store.store(group=SCHEMA_GROUP, name=name, node=schema_of(settings))

"""Owns what a transferlab process sets up before anything else, in one call, so that importing a transferlab module
never changes the process: the configs' OmegaConf resolvers (all named ``transferlab.…``), their structured-config
schemas (``schemas.py``), and the environment that libraries read when they are imported. It imports nothing heavy,
so ``--help`` and shell completion stay fast.

Every entry script (train.py, eval.py, predict.py, export.py, probe.py) calls :func:`prepare` first, before Hydra
composes its config; so do the test suite's ``conftest.py`` and the notebooks, which compose configs themselves, and
``commands.train.run`` (for any other caller that does). Calling it again is harmless.
"""

from __future__ import annotations

import os

from transferlab.launch.resolvers import register_resolvers
from transferlab.launch.schemas import register_schemas


def prepare() -> None:
    # albumentations asks PyPI for a newer version on import, blocking up to 2 s and warning when offline; training
    # must not depend on the network. setdefault: a user's own choice wins.
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    register_resolvers()
    register_schemas()  # the config groups' structured schemas, before Hydra composes

"""``python -m transferlab.backbones --list [pattern]``, ``--describe NAME``, ``--tags PATTERN``."""

from transferlab.backbones.builder import main

main()

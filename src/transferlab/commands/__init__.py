"""The commands, one module per entry script: ``train.py`` → :mod:`.train`, ``eval.py`` → :mod:`.eval`,
``predict.py`` → :mod:`.predict`, ``export.py`` → :mod:`.export`, ``probe.py`` → :mod:`.probe`.

Each is thin over the library (the modules of ``transferlab``); a command never imports another command, and
nothing in the library imports a command.
"""

"""What happens between the command line and a command: the process set up (:mod:`.startup`, with the
configs' resolvers, :mod:`.resolvers`), a refused config reported (:mod:`.cli`), a re-launch into a run dir
(:mod:`.resume`), and the composed config checked before anything slow (:mod:`.config_checks`).
"""

from transferlab._lazy import lazy_exports

_EXPORTS = {
    "prepare": "startup",
    "ConfigError": "cli",
    "user_errors": "cli",
    "prepare_launch": "resume",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

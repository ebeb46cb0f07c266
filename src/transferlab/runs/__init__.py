"""The run directory: the name of every file and folder in it and its metrics.json (:mod:`.layout`), the lock that
gives one launch at a time a run dir (:mod:`.lock`), and the renamed module paths that older run dirs' saved configs
still hold (:mod:`.legacy`). Imports nothing heavy; everything above it asks it for a run dir's names.
"""

from transferlab._lazy import lazy_exports

_EXPORTS = {
    "RunMetrics": "layout",
    "read_metrics": "layout",
    "write_metrics": "layout",
    "read_config": "layout",
    "run_dir_of": "layout",
    "hold_run_dir": "lock",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

"""What a run and a sweep tell: a run's plots (:mod:`.run_plots`, drawn with :mod:`.charts` in the fonts of
:mod:`.fonts`), the statistics of an honest comparison (:mod:`.stats`, :mod:`.comparison`), a sweep's summary.csv
(:mod:`.sweep_summary`) and report.md (:mod:`.sweep_report`, with :mod:`.optuna_study`).
"""

from transferlab._lazy import lazy_exports

_EXPORTS = {
    "SummaryCallback": "sweep_summary",
    "ExitStatusCallback": "sweep_summary",
    "ReportCallback": "sweep_report",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

"""Running a trained model: loading a checkpoint (:mod:`.trained_model`), image files in batches
(:mod:`.image_files`), test-time augmentation (:mod:`.tta`), images held in memory (:mod:`.predictor`), and the
figures of predictions against the truth (:mod:`.metrics`).
"""

from transferlab._lazy import lazy_exports

_EXPORTS = {
    "Predictor": "predictor",
    "ImagePrediction": "predictor",
    "load_classifier": "trained_model",
    "find_checkpoint": "trained_model",
    "predict_files": "image_files",
    "Predictions": "image_files",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

"""The images, before any model: what a folder or label table holds (:mod:`.layouts`, :mod:`.scan_notes`,
:mod:`.label_files`, :mod:`.class_names`, :mod:`.samples`), the split (:mod:`.stratified`, :mod:`.splits`),
decoding (:mod:`.images`), bad files (:mod:`.bad_images`), the transforms and the preprocessing a checkpoint
carries (:mod:`.transforms`, :mod:`.preprocessing`), the datasets and loaders (:mod:`.datasets`,
:mod:`.feature_cache`), and the Lightning datamodule that wires them (:mod:`.datamodule`); the demo set and
downloads (:mod:`.demo`, :mod:`.download`, :mod:`.archives`). Imports no model code.
"""

from transferlab._lazy import lazy_exports

_EXPORTS = {
    "FolderDataModule": "datamodule",
    "SampleTable": "samples",
    "SPLITS": "samples",
    "read_rgb": "images",
    "list_images": "images",
    "is_image_file": "images",
    "make_demo_dataset": "demo",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

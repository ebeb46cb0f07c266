"""Any torchvision or timm classifier as a :class:`~.record.Backbone`: built by name with transferlab's head
(:mod:`.builder`), its ordered stages, feature width and preprocessing (:mod:`.record`), its pretrained weights
(:mod:`.weights`), and the two families (:mod:`.torchvision_families` over :mod:`.torchvision_surgery`,
:mod:`.timm_models`). ``python -m transferlab.backbones --list [pattern]`` lists the names.
"""

from transferlab._lazy import lazy_exports

_EXPORTS = {
    "build_backbone": "builder",
    "preprocessing_for": "builder",
    "available_backbones": "builder",
    "check_backbone_name": "builder",
    "outline_backbone": "builder",
    "describe": "builder",
    "Backbone": "record",
    "Stage": "record",
    "load_backbone_weights": "weights",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

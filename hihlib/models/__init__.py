"""Models: the stacked hourglass backbone, the heads, and the registry of named variants.

``create(name, num_landmarks=98, head="hih")`` builds a model; ``list_models()`` names them.
HRNetV2 and H3R's MobileNetV2 (``hrnet``, ``mobilenetv2``) carry the same heads through ``BackboneModel``
(``backbones``). Reading the authors' released weights (HIH, H3R, HRNet-facial) is one layer up, in
``hihlib.inference.released_hih`` and ``hihlib.inference.released_h3r``.
"""

from .backbones import BackboneConfig, BackboneModel
from .heads import HEADS, DecimalHead, LandmarkModel
from .hourglass import HourglassConfig, StackedHourglass
from .registry import ALIASES, count_macs, count_parameters, create, list_models, model_config, register_model

__all__ = [
    "ALIASES", "BackboneConfig", "BackboneModel", "HEADS", "DecimalHead", "HourglassConfig", "LandmarkModel", "StackedHourglass",
    "count_macs", "count_parameters", "create", "list_models", "model_config", "register_model",
]

"""Models: the stacked hourglass backbone, the heads, and the registry of named variants.

``create(name, num_landmarks=98, head="hih")`` builds a model; ``list_models()`` names them.
``load_released_hih(path)`` reads the authors' released HIH weights (``hihlib.models.released``).
HRNetV2 and H3R's MobileNetV2 (``hrnet``, ``mobilenetv2``) carry the same heads through ``BackboneModel``
(``backbones``); ``hihlib.models.released_h3r`` reads H3R's and HRNet-facial's released files.
"""

from .backbones import BackboneConfig, BackboneModel
from .heads import HEADS, DecimalHead, LandmarkModel
from .hourglass import HourglassConfig, StackedHourglass
from .registry import ALIASES, count_macs, count_parameters, create, list_models, model_config, register_model
from .released import load_released_hih, released_state_dict

__all__ = [
    "ALIASES", "BackboneConfig", "BackboneModel", "HEADS", "DecimalHead", "HourglassConfig", "LandmarkModel", "StackedHourglass",
    "count_macs", "count_parameters", "create", "list_models", "model_config", "register_model",
    "load_released_hih", "released_state_dict",
]

"""Released weights of H3R (baoshengyu/H3R) and HRNet-facial (HRNet/HRNet-Facial-Landmark-Detection),
and ``hih convert --released PATH``'s recognition of the family of a released file.

Families, told apart by their keys (``detect_family``):

* **HIH** (starhiking/HeatmapInHeatmap): ``{"state_dict": ...}`` with ``pre_conv.*``, ``hg0.*``,
  ``hg0_conv_pred.*``, ``offset_head.*`` keys: ``hihlib.inference.released_hih``.
* **H3R**: ``model.pth``, a raw state dict of ``FacialLandmarkDetector``: ``backbone.*`` (HRNet or
  MobileNetV2, the names of ``hihlib.models.hrnet`` / ``mobilenetv2``) and ``heatmap_head.head.layers.{0,1,3}``
  (``BinaryHeadBlock``). Beside it, ``config.yaml`` (read when present) gives the input size, the box
  (P1 = ground-truth landmark box, P2 = dataset box), the architecture, the top-k and the flip order.
  Without it, the architecture and the landmark count come from the shapes and the input size from
  ``--input-size``. The model is a ``BackboneModel(head="h3r")`` with nearest fuse up-sampling; the
  checkpoint's codec is ``H3RCodec(frame="released_h3r", k=TOPK)``, whose ``topk`` decoding on plane 1
  is the released ``BinaryHeatmap2Coordinate`` (x = 4 u).
* **HRNet-facial**: a plain state dict (``HR18-300W.pth``: every key prefixed ``module.``) of
  ``HighResolutionNet``: the backbone's keys without a prefix and ``head.{0,1,3}`` (1x1 convs with
  biases). The model is a ``BackboneModel(head="gaussian", upsample="bilinear")``; the codec is the
  Gaussian codec (sigma 1.5) with ``quarter`` decoding first: argmax + 0.25 toward the larger
  neighbour, read in hihlib's frame x = 4 (u + 0.5) - 0.5, which is where HRNet-facial's ``decode_preds``
  (1-based argmax, quarter shift, + 0.5, then its crop transform) puts a cell before it truncates the
  result to whole image pixels. Differences at the border (documented, not reproduced): HRNet-facial
  shifts only when the argmax is inside on *both* axes, and reads a map whose maximum is <= 0 as cell 0.

Every tensor of a released file maps onto one hihlib tensor of the same shape and every hihlib tensor
is given, else ``ReleasedCheckpointError`` names the first key that does not fit, in one line.
``h3r_state_dict(model)`` / ``hrnet_facial_state_dict(model)`` write a hihlib model in the released
formats (tests and notebook 03 use them to make released-format files from random weights).
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path

import torch
from torch import Tensor

from ..errors import HihError
from ..models.backbones import BackboneConfig, BackboneModel
from .released_hih import RELEASED_PREPROCESSING, ReleasedCheckpointError, load_key_pairs, read_released

FAMILIES = ("HIH", "H3R", "HRNet-facial")
#: H3R's config.yaml BACKBONE.ARCH -> hihlib's model name
H3R_ARCHS = {"hrnet18": "hrnet_w18", "hrnet18s": "hrnet_w18_small_v2", "hrnet32": "hrnet_w32",
             "mobilenetv2": "mobilenetv2"}
#: H3R's config.yaml INPUT.DATASET -> hihlib's dataset name (the released configs say WFLW or 300W)
H3R_DATASETS = {"WFLW": "wflw", "300W": "300w", "COFW": "cofw"}
_H3R_HEAD = "heatmap_head.head.layers."
_HRNET_KEY = re.compile(r"(conv[12]|bn[12]|layer1|transition\d|stage\d|head)\.")
# key patterns of each family, for "the first key that did not fit"
_FAMILY_KEYS = {"HIH": re.compile(r"(pre_conv|hg\d+|offset_head)[._]"),
                "H3R": re.compile(r"(backbone|heatmap_head)\."),
                "HRNet-facial": _HRNET_KEY}
_SIGNATURES = {"HIH": "hg0_conv_pred.weight", "H3R": _H3R_HEAD + "3.weight", "HRNet-facial": "head.3.weight"}


# ----------------------------------------------------------------------------------------------
# Family and architecture
# ----------------------------------------------------------------------------------------------

def detect_family(sd: dict[str, Tensor], where: str = "released checkpoint") -> str:
    """"HIH", "H3R" or "HRNet-facial" from the keys (``module.`` already stripped). Otherwise
    ``ReleasedCheckpointError`` in one line, naming each family tried and the first key that did not fit."""
    for family in FAMILIES:
        if _SIGNATURES[family] in sd and all(_FAMILY_KEYS[family].match(k) for k in sd):
            return family
    why = []
    for family in FAMILIES:
        bad = next((k for k in sd if not _FAMILY_KEYS[family].match(k)), None)
        why.append(f"{family}: key {bad!r} is not one of its keys" if bad is not None
                   else f"{family}: key {_SIGNATURES[family]!r} missing")
    raise ReleasedCheckpointError(f"{where}: not a released checkpoint of a known family (tried {'; '.join(why)})")


def backbone_arch(sd: dict[str, Tensor], prefix: str, where: str) -> str:
    """hihlib's model name of the backbone whose keys start with ``prefix``, from the shapes."""
    if f"{prefix}features.0.0.weight" in sd:
        return "mobilenetv2"
    key = f"{prefix}transition1.0.0.weight"
    if key not in sd:
        raise ReleasedCheckpointError(f"{where}: expected key {key!r} (HRNet) or {prefix + 'features.0.0.weight'!r} "
                                      f"(MobileNetV2), found neither")
    width = sd[key].shape[0]
    blocks = sum(1 for k in sd if re.fullmatch(re.escape(prefix) + r"layer1\.\d+\.conv1\.weight", k))
    archs = {(18, 4): "hrnet_w18", (18, 2): "hrnet_w18_small_v2", (32, 4): "hrnet_w32"}
    if (width, blocks) not in archs:
        raise ReleasedCheckpointError(f"{where}: an HRNet of width {width} with {blocks} blocks in layer1; expected "
                                      f"W18 (4 blocks), W18-small-v2 (2) or W32 (4)")
    return archs[(width, blocks)]


def read_h3r_config(path: str | os.PathLike) -> dict:
    """The options of an H3R ``config.yaml`` with the released defaults (torchalign/cfg.py) filled in:
    {"input_size", "bbox", "arch", "landmarks", "topk", "flip", "flip_order", "dataset", "scale"}."""
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ReleasedCheckpointError(f"{path}: expected H3R's config.yaml (INPUT, BACKBONE, HEATMAP), could not "
                                      f"read it: {str(e).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ReleasedCheckpointError(f"{path}: expected a mapping with INPUT, BACKBONE, HEATMAP")
    i, b, h = raw.get("INPUT") or {}, raw.get("BACKBONE") or {}, raw.get("HEATMAP") or {}
    size = i.get("SIZE", [256, 256])
    arch = b.get("ARCH", "hrnet18")
    if arch not in H3R_ARCHS:
        raise ReleasedCheckpointError(f"{path}: BACKBONE.ARCH {arch!r}: expected one of {sorted(H3R_ARCHS)}")
    if not (isinstance(size, list) and len(size) == 2 and size[0] == size[1]):
        raise ReleasedCheckpointError(f"{path}: INPUT.SIZE {size!r}: expected a square size [S, S]")
    bbox = i.get("BBOX", "P1")
    if bbox not in ("P1", "P2"):
        raise ReleasedCheckpointError(f"{path}: INPUT.BBOX {bbox!r}: expected P1 or P2")
    return {"input_size": int(size[0]), "bbox": bbox, "arch": H3R_ARCHS[arch], "landmarks": h.get("OUT_CHANNEL"),
            "topk": int(h.get("TOPK", 9)), "flip": bool(i.get("FLIP", True)), "flip_order": i.get("FLIP_ORDER"),
            "dataset": i.get("DATASET", "WFLW"), "scale": float(i.get("SCALE", 1.25)),
            "channels": h.get("PROJ_CHANNEL")}


# ----------------------------------------------------------------------------------------------
# Key mappings
# ----------------------------------------------------------------------------------------------

def h3r_key(ours: str) -> str:
    """hihlib ``BackboneModel(head="h3r")`` key -> the released H3R key."""
    if ours.startswith("heatmap_head."):
        return _H3R_HEAD + ours[len("heatmap_head."):]
    return ours


def hrnet_facial_key(ours: str) -> str:
    """hihlib ``BackboneModel(head="gaussian")`` key -> the released HRNet-facial key."""
    if ours.startswith("heatmap_head."):
        return "head." + ours[len("heatmap_head."):]
    return ours.removeprefix("backbone.")


def h3r_state_dict(model: BackboneModel) -> dict[str, Tensor]:
    """A hihlib H3R model's state dict under the released key names (what ``model.pth`` holds)."""
    return {h3r_key(k): v.detach().clone() for k, v in model.state_dict().items()}


def hrnet_facial_state_dict(model: BackboneModel, prefix: str = "") -> dict[str, Tensor]:
    """A hihlib HRNet + gaussian model's state dict under HRNet-facial's names (``prefix="module."`` as
    its 300W file)."""
    return {prefix + hrnet_facial_key(k): v.detach().clone() for k, v in model.state_dict().items()}


def load_mapped(model: BackboneModel, sd: dict[str, Tensor], to_released, family: str, where: str) -> None:
    """Copy ``sd`` into ``model`` through the key mapping ``to_released`` (hihlib key -> released key):
    every key must fit, with its shape; ``ReleasedCheckpointError`` names the first that does not."""
    load_key_pairs(model, sd, [(k, to_released(k)) for k in model.state_dict()], where,
                   f"the {family} {model.config.arch} model")


# ----------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------

def h3r_model(sd: dict[str, Tensor], *, input_size: int = 256, where: str = "released H3R model",
              config: dict | None = None) -> BackboneModel:
    """The released H3R network (state dict ``sd``) as a ``BackboneModel`` in eval mode, bit-identical to
    ``FacialLandmarkDetector``'s backbone + head ("planes" = its (N, 2, K, H, W) output)."""
    arch = backbone_arch(sd, "backbone.", where)
    key = _H3R_HEAD + "3.weight"
    if key not in sd or _H3R_HEAD + "0.weight" not in sd:
        raise ReleasedCheckpointError(f"{where}: expected keys {_H3R_HEAD + '0.weight'!r} and {key!r} (BinaryHeadBlock)")
    if sd[key].shape[0] % 2:
        raise ReleasedCheckpointError(f"{where}: key {key!r} has {sd[key].shape[0]} output channels, expected 2 x landmarks")
    landmarks = sd[key].shape[0] // 2
    if config is not None:
        input_size = config["input_size"]
        for what, got, want in (("BACKBONE.ARCH", config["arch"], arch), ("HEATMAP.OUT_CHANNEL", config["landmarks"], landmarks)):
            if got is not None and got != want:
                raise ReleasedCheckpointError(f"{where}: config.yaml says {what} {got!r} but model.pth holds {want!r}")
    cfg = BackboneConfig(arch=arch, input_size=input_size, heatmap_size=input_size // 4, num_landmarks=landmarks,
                         upsample="nearest", head_channels=sd[_H3R_HEAD + "0.weight"].shape[0], head_bias=False)
    model = BackboneModel(cfg, head="h3r")
    load_mapped(model, sd, h3r_key, "H3R", where)
    return model.eval()


def hrnet_facial_model(sd: dict[str, Tensor], *, input_size: int = 256,
                       where: str = "released HRNet-facial model") -> BackboneModel:
    """The released HRNet-facial network as a ``BackboneModel(head="gaussian", upsample="bilinear")``."""
    arch = backbone_arch(sd, "", where)
    if "head.3.weight" not in sd or "head.0.weight" not in sd:
        raise ReleasedCheckpointError(f"{where}: expected keys 'head.0.weight' and 'head.3.weight' (the heatmap head)")
    cfg = BackboneConfig(arch=arch, input_size=input_size, heatmap_size=input_size // 4,
                         num_landmarks=sd["head.3.weight"].shape[0], upsample="bilinear",
                         head_channels=sd["head.0.weight"].shape[0], head_bias="head.0.bias" in sd)
    model = BackboneModel(cfg, head="gaussian")
    load_mapped(model, sd, hrnet_facial_key, "HRNet-facial", where)
    return model.eval()


def _dataset_for(landmarks: int, named: str | None, where: str) -> str:
    from ..data.schemes import get_scheme

    if named is not None and named.upper() in H3R_DATASETS:
        name = H3R_DATASETS[named.upper()]
        if get_scheme(name).num_points == landmarks:
            return name
    for name in ("wflw", "300w", "cofw"):
        if get_scheme(name).num_points == landmarks:
            return name
    raise ReleasedCheckpointError(f"{where}: {landmarks} landmarks{f' ({named})' if named else ''}: hihlib has no "
                                  f"landmark scheme of that size (wflw 98, 300w 68, cofw 29) to evaluate or mirror it")


def released_backbone_checkpoint(model: BackboneModel, *, family: str, source: str, dataset: str, box: str,
                                 scale: float, codec_options: dict, extra: dict | None = None,
                                 flip: bool = True) -> dict:
    """The dict of a hihlib checkpoint holding a converted H3R or HRNet-facial model."""
    from ..codecs import get_codec
    from ..pipeline.checkpoint import checkpoint_dict
    from ..pipeline.config import DEFAULTS, check_config
    from ..data.dataset import IMAGENET_MEAN, IMAGENET_STD
    from ..data.schemes import get_scheme

    if (list(IMAGENET_MEAN), list(IMAGENET_STD)) != (RELEASED_PREPROCESSING["mean"], RELEASED_PREPROCESSING["std"]):
        raise HihError("hihlib's image normalisation no longer matches the released pipelines' "
                       f"(mean/std {IMAGENET_MEAN}/{IMAGENET_STD}); the converted model would read other inputs")
    c = model.config
    codec_name = "h3r" if model.head == "h3r" else "gaussian"
    cfg = copy.deepcopy(DEFAULTS)
    cfg["data"].update(dataset=dataset, input_size=c.input_size, box=box, scale=float(scale))
    cfg["codec"] = {"name": codec_name, "options": codec_options}
    options = {"upsample": c.upsample, "head_channels": c.head_channels, "head_bias": c.head_bias}
    cfg["model"] = {"name": c.arch, "heatmap_size": c.heatmap_size, "options": options, "head": model.head}
    check_config(cfg, where=source)
    codec = get_codec(codec_name, input_size=c.input_size, heatmap_size=c.heatmap_size, **codec_options)
    mirror = list(get_scheme(dataset).mirror)
    return checkpoint_dict(model, codec, None, cfg, mirror=mirror,
                           released={"family": family, "source": source, "preprocessing": RELEASED_PREPROCESSING,
                                     "flip_test": flip, "flip_order": mirror, **(extra or {})})


def convert_any(path: str | os.PathLike, out: str | os.PathLike, *, input_size: int | None = None,
                box: str | None = None, scale: float | None = None, dataset: str | None = None) -> tuple[Path, str]:
    """Released file ``path`` of any family -> hihlib checkpoint ``out`` (atomic). Returns (out, family).

    ``input_size``/``box``/``scale`` override what the file (or H3R's config.yaml) says; defaults 256,
    the dataset box and 1.25."""
    from ..io import torch_save
    from .released_hih import convert_released

    path = Path(path)
    sd, meta = read_released(path)
    family = detect_family(sd, str(path))
    if family == "HIH":
        return convert_released(path, out, input_size=input_size or 256, box=box or "dataset",
                                scale=scale or 1.25), family
    if family == "H3R":
        yaml_path = path.with_name("config.yaml")
        config = read_h3r_config(yaml_path) if yaml_path.is_file() else None
        if config is not None and input_size is not None and input_size != config["input_size"]:
            raise ReleasedCheckpointError(f"{yaml_path}: INPUT.SIZE {config['input_size']} but --input-size {input_size}")
        model = h3r_model(sd, input_size=input_size or 256, where=str(path), config=config)
        c = config or {}
        landmarks = model.num_landmarks
        name = dataset or _dataset_for(landmarks, c.get("dataset"), str(path))
        order = c.get("flip_order")
        from ..data.schemes import get_scheme

        if order is not None and list(order) != list(get_scheme(name).mirror):
            raise ReleasedCheckpointError(f"{yaml_path}: INPUT.FLIP_ORDER is not hihlib's {name} mirror permutation; "
                                          f"the flip test would pair other landmarks")
        released_box = {"P1": "landmarks", "P2": "dataset"}[c.get("bbox", "P1")]
        extra = {"config_yaml": str(yaml_path) if config else None, "bbox": c.get("bbox")}
        ckpt = released_backbone_checkpoint(model, family=family, source=str(path), dataset=name,
                                            box=box or released_box, scale=scale or c.get("scale", 1.25),
                                            codec_options={"k": c.get("topk", 9), "frame": "released_h3r"},
                                            extra=extra, flip=c.get("flip", True))
        return torch_save(ckpt, out), family
    model = hrnet_facial_model(sd, input_size=input_size or 256, where=str(path))
    name = dataset or _dataset_for(model.num_landmarks, None, str(path))
    ckpt = released_backbone_checkpoint(model, family=family, source=str(path), dataset=name, box=box or "dataset",
                                        scale=scale or 1.25, codec_options={"sigma": 1.5, "method": "quarter"},
                                        extra=meta, flip=True)
    return torch_save(ckpt, out), family

"""``hih export``: a checkpoint -> one ONNX graph from face crops to landmarks, the decoder inside.

The graph (``export_onnx``)::

    images  float32 (N, 3, S, S), RGB in [0, 255] (a crop as ``hihlib.data.transforms.crop_matrix`` makes it)
      -> the checkpoint's normalisation, (v / 255 - mean) / std (ImageNet's, ``hihlib.data.dataset``)
      -> the network -> its maps (``codec.target_keys``)
      -> ``codec.decode(maps, method)``
    landmarks  float32 (N, K, 2), (x, y) in crop pixels (hihlib's convention: 0-based, pixel centres at
               integers; for a ``released_hih`` checkpoint the maps are read in that frame, as ``hih eval`` does)
    scores     float32 (N, K), ``landmark_scores``: the peak of the regressed heatmap (Gaussian, HIH; about 1
               for a confident landmark), or for H3R's logits the spatial-softmax mass of the k cells that
               ``topk`` averages (in [0, 1])

with a dynamic batch size N. ``method="none"`` exports the network alone (outputs named after
``codec.target_keys``: raw maps, as mmdeploy exports heatmap models). ``flip=True`` runs the network on
the crop and on its mirror image (one batch of 2N) and averages the two decodings (the mirrored one mapped
back with x -> S - 1 - x and relabelled with the scheme's mirror permutation).

How it is built. The network and the decoder are exported separately with PyTorch's ``torch.export``
based exporter (``dynamo=True``, ONNX Script; the TorchScript exporter is deprecated in torch 2.13 and
bakes the example batch size into the decoders' ``view`` and ``arange`` calls) and joined with
``onnx.compose.merge_models``, so the decoder's graph is the codec's own ``decode`` traced, not a copy.
A decoder graph depends only on the codec, the method and the map sizes: ``cache`` (a dict) reuses it
across networks, and a network's graph across decoders (the tests export every method for every head
and backbone this way: an export takes seconds, most of it in ``torch.export``'s tracing). Nothing here
depends on the backbone: any model that ``hihlib.pipeline.checkpoint.load_checkpoint`` builds exports.

Metadata (``read_metadata``): input size, crop scale, normalisation, frame, landmark count, scheme,
dataset, codec, decoder, flip, and the outputs' units.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import ConfigError, HihError

#: The opset of the exported graphs (onnxruntime >= 1.16 runs it).
OPSET = 18
#: Input of every exported graph.
INPUT = "images"
INPUT_DESCRIPTION = "float32 (N, 3, S, S), RGB in [0, 255], the face crop"
UNITS = "crop pixels, 0-based, pixel centres at integer coordinates"


def normalisation() -> tuple[list[float], list[float]]:
    """(scale, shift) per RGB channel with normalised = v * scale + shift for v in [0, 255]: hihlib's
    ImageNet normalisation (``hihlib.data.dataset.normalize_image``), the one every checkpoint reads."""
    from ..data.dataset import _SCALE, _SHIFT

    return list(_SCALE), list(_SHIFT)


def landmark_scores(codec, outputs: dict[str, Tensor]) -> Tensor:
    """A confidence per landmark, (B, K) in [0, 1] for a trained model.

    * maps of regressed values (Gaussian, HIH's integer map): the map's peak value (the training target's
      peak is 1), clamped to [0, 1];
    * H3R's logits: the spatial-softmax probability mass of the ``codec.k`` largest cells (what ``topk``
      averages); 1 when the map's mass is concentrated on them as the randomized-rounding target is.
    """
    heat = outputs["heatmap"].float().flatten(-2)  # (B, K, H*W)
    if codec.name == "h3r":
        k = min(int(getattr(codec, "k", 9)), heat.shape[-1])
        return (heat.topk(k, dim=-1).values.logsumexp(-1) - heat.logsumexp(-1)).exp()
    return heat.amax(-1).clamp(0.0, 1.0)


class Network(nn.Module):
    """images (N, 3, S, S) RGB in [0, 255] -> the maps ``keys`` of ``model`` (float32), normalisation
    inside; with ``flip`` the maps of the crops and of their mirror images, (2N, ...)."""

    def __init__(self, model: nn.Module, keys, *, flip: bool = False):
        super().__init__()
        self.model, self.keys, self.flip = model, tuple(keys), bool(flip)
        scale, shift = normalisation()
        # on the model's device, so a graph built around a CUDA model runs on CUDA without another .to()
        dev = next((t.device for t in model.parameters()), torch.device("cpu"))
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32, device=dev).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("shift", torch.tensor(shift, dtype=torch.float32, device=dev).view(1, 3, 1, 1),
                             persistent=False)

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        x = images.float() * self.scale + self.shift  # the same float32 operations as normalize_image
        if self.flip:
            x = torch.cat([x, x.flip(-1)], 0)
        out = self.model(x)
        return tuple(out[k].float() for k in self.keys)


class Decoder(nn.Module):
    """The codec's ``decode(maps, method)`` and ``landmark_scores``: maps (tuple in ``codec.target_keys``
    order) -> (landmarks (N, K, 2) crop pixels, scores (N, K)); with ``flip`` the maps are those of
    ``Network(flip=True)`` (2N) and the two halves are averaged."""

    def __init__(self, codec, method: str, *, flip: bool = False, mirror=None):
        super().__init__()
        self.codec, self.method, self.flip = codec, method, bool(flip)
        if flip:
            if mirror is None:
                raise ConfigError("flip needs the landmark scheme's mirror permutation")
            self.register_buffer("mirror", torch.as_tensor(list(mirror), dtype=torch.long), persistent=False)

    def forward(self, maps: tuple[Tensor, ...]) -> tuple[Tensor, Tensor]:
        outputs = dict(zip(self.codec.target_keys, maps))
        pts = self.codec.decode(outputs, self.method).float()  # (M, K, 2)
        scores = landmark_scores(self.codec, outputs)  # (M, K)
        if self.flip:
            n = pts.shape[0] // 2
            back = pts[n:].index_select(1, self.mirror)
            back = torch.stack([(self.codec.input_size - 1) - back[..., 0], back[..., 1]], -1)
            pts = 0.5 * (pts[:n] + back)
            scores = 0.5 * (scores[:n] + scores[n:].index_select(1, self.mirror))
        return pts, scores


class LandmarkGraph(nn.Module):
    """``Decoder(Network(images))`` in PyTorch: what the exported graph computes, for eager use
    (``hihlib.Aligner``'s torch backend). images (N, 3, S, S) RGB [0, 255] -> (landmarks, scores)."""

    def __init__(self, model: nn.Module, codec, method: str | None = None, *, flip: bool = False, mirror=None):
        super().__init__()
        self.network = Network(model, codec.target_keys, flip=flip)
        self.decoder = Decoder(codec, method or codec.default_method, flip=flip, mirror=mirror)
        self.decoder.to(self.network.scale.device)  # its mirror, with the network's buffers

    @torch.no_grad()
    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        return self.decoder(self.network(images))


@contextlib.contextmanager
def _quiet():
    """The exporter prints its progress and warns about optional packages: keep the CLI's output clean."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _require_onnx():
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as e:
        raise HihError(f"ONNX export needs onnx and onnxscript ({e.name} is missing): pip install 'hihlib[export]'") from None


def _export(module: nn.Module, args: tuple, input_names, output_names, dynamic_shapes):
    with _quiet():
        program = torch.onnx.export(module, args, dynamo=True, input_names=list(input_names),
                                    output_names=list(output_names), dynamic_shapes=dynamic_shapes,
                                    opset_version=OPSET, optimize=True, verify=False, verbose=False)
    return program.model_proto


def decoder_graph(codec, method: str, maps: tuple[Tensor, ...], *, flip: bool = False, mirror=None,
                  cache: dict | None = None):
    """The ONNX graph of ``Decoder`` for maps shaped like ``maps`` (batch dynamic); inputs named after
    ``codec.target_keys``, outputs ``landmarks`` and ``scores``. ``cache``: a dict to reuse graphs in."""
    key = (repr(codec), method, flip, tuple(mirror) if flip else None, tuple(tuple(m.shape[1:]) for m in maps))
    if cache is not None and key in cache:
        return cache[key]
    batch = torch.export.Dim("batch")
    dec = Decoder(codec, method, flip=flip, mirror=mirror).eval()
    proto = _export(dec, (tuple(maps),), codec.target_keys, ("landmarks", "scores"),
                    {"maps": tuple({0: 2 * batch if flip else batch} for _ in maps)})
    if cache is not None:
        cache[key] = proto
    return proto


def export_onnx(model: nn.Module, codec, out: str | os.PathLike | None = None, *, method: str | None = None,
                flip: bool = False, mirror=None, metadata: dict | None = None, cache: dict | None = None):
    """Export ``model`` (any hihlib model in eval mode: images -> dict of maps) with ``codec``'s decoder
    ``method`` (None: the codec's default; "none": the raw maps) to an ``onnx.ModelProto``; written
    atomically to ``out`` when given. ``mirror``: the scheme's mirror permutation (needed by ``flip``).
    ``metadata``: extra string properties. Returns the ModelProto."""
    _require_onnx()
    import onnx
    import onnx.compose

    method = method or codec.default_method
    if method != "none" and method not in codec.methods:
        raise ConfigError(f"--method {method!r}: the {codec.name} codec decodes with one of "
                          f"{', '.join(codec.methods)} (or none for the raw maps)")
    if flip and method == "none":
        raise ConfigError("--flip needs a decoder: the raw maps of a crop and its mirror cannot be averaged "
                          "(HIH's decimal maps do not mirror); export with --method M")
    model = model.eval()
    device = next(model.parameters()).device
    size = int(model.input_size)
    keys = codec.target_keys
    net = Network(model, keys, flip=flip).to(device).eval()
    example = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0)).mul(255).to(device)
    batch = torch.export.Dim("batch")
    net_key = ("network", model, flip)
    if cache is not None and net_key in cache:
        proto = cache[net_key]
    else:
        proto = _export(net, (example,), (INPUT,), keys, {"images": {0: batch}})
        if cache is not None:
            cache[net_key] = proto
    proto = _copy(proto)
    with torch.no_grad():
        maps = tuple(m.cpu() for m in net(example))
    if method != "none":
        dec = decoder_graph(codec, method, maps, flip=flip, mirror=mirror, cache=cache)
        dec = onnx.compose.add_prefix(dec, "decode/", rename_outputs=False)
        proto = onnx.compose.merge_models(proto, dec, io_map=[(k, f"decode/{k}") for k in keys])
    meta = {"producer": "hihlib", "input": INPUT_DESCRIPTION, "input_size": str(size),
            "normalisation": "v * scale + shift per RGB channel inside the graph; scale "
                             + " ".join(f"{v:.9g}" for v in normalisation()[0]) + ", shift "
                             + " ".join(f"{v:.9g}" for v in normalisation()[1]),
            "num_landmarks": str(int(model.num_landmarks)), "codec": codec.name,
            "heatmap_size": str(codec.heatmap_size), "frame": getattr(codec, "frame", "hihlib"),
            "decoder": method, "flip": str(bool(flip)).lower(),
            "outputs": ("landmarks float32 (N, K, 2) in " + UNITS + "; scores float32 (N, K)") if method != "none"
                       else "; ".join(f"{k} float32 (N, {', '.join(map(str, m.shape[1:]))})" for k, m in zip(keys, maps))}
    meta.update({k: str(v) for k, v in (metadata or {}).items()})
    onnx.helper.set_model_props(proto, meta)
    if out is not None:
        from ..io import atomic_path

        with atomic_path(out) as tmp:
            onnx.save(proto, str(tmp))
    return proto


def _copy(proto):
    import onnx

    out = onnx.ModelProto()
    out.CopyFrom(proto)
    return out


def read_metadata(path_or_proto) -> dict[str, str]:
    """The metadata properties of an exported graph (a path or an ``onnx.ModelProto``)."""
    import onnx

    proto = path_or_proto if isinstance(path_or_proto, onnx.ModelProto) else onnx.load(str(path_or_proto))
    return {p.key: p.value for p in proto.metadata_props}


def scheme_name(cfg: dict) -> str:
    """The landmark scheme of a checkpoint's configuration (the table of ``hihlib.data.datasets``)."""
    from ..data.datasets import dataset_info

    return dataset_info(cfg["data"]["dataset"]).scheme


def export_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike, *, method: str | None = None,
                      flip: bool = False, cache: dict | None = None):
    """``hih export``: the checkpoint's model and codec, its scheme's mirror permutation and the
    checkpoint's data settings as metadata. Returns the ModelProto."""
    from ..pipeline.checkpoint import load_checkpoint
    from ..data.schemes import get_scheme

    _require_onnx()
    model, codec, cfg = load_checkpoint(checkpoint, "cpu")
    scheme = get_scheme(scheme_name(cfg))
    d = cfg["data"]
    meta = {"dataset": d["dataset"], "scheme": scheme.name, "crop_scale": f"{float(d['scale']):g}",
            "crop": f"square of crop_scale x the face box's side centred on the box, resized to input_size",
            "checkpoint": Path(checkpoint).name, "model": (cfg.get("model") or {}).get("name", "")}
    return export_onnx(model, codec, out, method=method, flip=flip, mirror=scheme.mirror, metadata=meta, cache=cache)


def register(sub) -> None:
    p = sub.add_parser("export", help="export a checkpoint to ONNX with its decoder inside",
                       description="Write one ONNX graph from face crops (float32 (N, 3, S, S), RGB in [0, 255]; "
                       "the normalisation is inside) to landmarks (N, K, 2) in crop pixels and scores (N, K), "
                       "with the codec's decoder fused in and a dynamic batch size. The file's metadata names "
                       "the input size, crop scale, frame, landmark count, dataset and decoder. Needs "
                       "pip install 'hihlib[export]'.")
    p.add_argument("--checkpoint", required=True, help="checkpoint written by hih train or hih convert")
    p.add_argument("--out", required=True, help="the .onnx file to write")
    p.add_argument("--method", default=None,
                   help="decode method (default: the codec's first); none: the network's raw maps")
    p.add_argument("--flip", action="store_true",
                   help="average the decodings of the crop and of its mirror image (twice the compute)")
    p.set_defaults(func=_cli)


def _cli(a) -> int:
    proto = export_checkpoint(a.checkpoint, a.out, method=a.method, flip=a.flip)
    meta = read_metadata(proto)
    print(f"wrote {a.out}: {meta['codec']} codec, decoder {meta['decoder']}"
          f"{' with flip' if a.flip else ''}, input (N, 3, {meta['input_size']}, {meta['input_size']}) RGB 0-255, "
          f"{meta['num_landmarks']} landmarks ({meta['scheme']})")
    return 0

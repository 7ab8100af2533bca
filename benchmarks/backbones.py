"""The cost of each backbone: parameters, forward GFLOPs, inference ms per face and training images/s.

Models, each with the head of the system it belongs to, at its input size: hg_tiny (hihlib's CPU
hourglass, HIH head, 128 px), hih_b (HIH's 4-stack hourglass, 256 px), hrnet_w18 (H3R's HRNetV2-W18 +
BinaryHeadBlock, 256 px), mobilenetv2 (H3R's, 256 and 128 px).

* parameters: ``count_parameters`` (BN statistics are buffers, not counted);
* GFLOPs: one forward at batch 1, counted with ``torch.utils.flop_counter`` (convolutions and matrix
  products, 2 FLOPs per multiply-accumulate; BN, activations and interpolation not counted), on the meta
  device (``hihlib.models.count_macs``);
* inference ms per face: eval mode, no_grad, fp32, ONE thread, batch 1 and batch 32 (median of repeats,
  divided by the batch);
* training images/s: forward + the head's loss + backward + Adam step on random tensors (data loading not
  measured), fp32, with ``--threads`` threads (default: every core).

Run on an idle machine (the numbers are only meaningful then; the load average is printed beside them):
      python benchmarks/backbones.py --write              # CPU, writes BENCHMARKS.md section backbones-cpu
      python benchmarks/backbones.py --device cuda --write   # CUDA (fp32 and bf16), section backbones-cuda
      python benchmarks/backbones.py --smoke              # 64 px, tiny batches, prints only (tests, gpu_check --smoke)
"""

from __future__ import annotations

import argparse
import contextlib
import os

import torch

from hihlib.studies.benchmarking import machine_description, markdown_table, time_it, write_section
from hihlib.codecs import get_codec
from hihlib.losses import make_loss
from hihlib.models import count_macs, count_parameters, create
from hihlib.models.heads import codec_name

#: (label, model name, head, input size)
MODELS = [("hg_tiny", "hg_tiny", "hih", 128), ("hih_b", "hih_b", "hih", 256),
          ("HRNetV2-W18", "hrnet_w18", "h3r", 256), ("MobileNetV2", "mobilenetv2", "h3r", 256),
          ("MobileNetV2", "mobilenetv2", "h3r", 128)]


def build(name: str, head: str, size: int, device=None):
    kw = {"input_size": size}
    if name.startswith("hg_") or name.startswith("hih_"):
        kw["heatmap_size"] = size // 4
    model = create(name, head=head, **kw)
    return model.to(device) if device is not None else model


def gflops(name: str, head: str, size: int) -> float:
    with torch.device("meta"):
        model = build(name, head, size)
    return 2 * count_macs(model) / 1e9


def inference_ms(model, size: int, batch: int, device, *, repeat: int, bf16: bool = False) -> float:
    """Median ms per face of a forward pass at ``batch``."""
    x = torch.randn(batch, 3, size, size, device=device)
    model.eval()
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    def fwd():
        with torch.no_grad(), ctx:
            model(x)

    return 1000 * time_it(fwd, repeat=repeat, warmup=1 if device.type == "cpu" else 3, sync=sync) / batch


def train_images_per_s(model, head: str, size: int, batch: int, device, *, steps: int, bf16: bool = False) -> float:
    codec = get_codec(codec_name(head), input_size=size, heatmap_size=model.heatmap_size)
    loss = make_loss(codec_name(head))
    x = torch.randn(batch, 3, size, size, device=device)
    coords = 4 + torch.rand(batch, model.num_landmarks, 2, device=device) * (size - 8)
    targets = codec.encode(coords)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    model.train()

    def step():
        with ctx:
            out = model(x, landmarks=coords)
        total, _ = loss(out, targets)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()

    sync = torch.cuda.synchronize if device.type == "cuda" else None
    return batch / time_it(step, repeat=steps, warmup=1, sync=sync)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--threads", type=int, default=None, help="threads for the training column (default: every core)")
    p.add_argument("--train-batch", type=int, default=None, help="training batch (default 8 on CPU, 32 on CUDA)")
    p.add_argument("--repeat", type=int, default=5, help="timed repeats per measurement (median)")
    p.add_argument("--smoke", action="store_true", help="64 px inputs, batches 1 and 2, one repeat; prints only")
    p.add_argument("--write", action="store_true", help="write the table into BENCHMARKS.md")
    a = p.parse_args(argv)
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("benchmarks/backbones.py: --device cuda but no CUDA device is available")
    models = [(lbl, n, h, 64 if a.smoke else s) for lbl, n, h, s in MODELS]
    # the released decimal head exists only at heatmap >= 4 x decimal (32 -> 8): hihlib's hih_ext below that
    models = [(lbl, n, "hih_ext" if h == "hih" and s // 4 < 32 else h, s) for lbl, n, h, s in models]
    if a.smoke:  # a small representative of each family
        models = [m for m in models if m[1] in ("hg_tiny", "mobilenetv2")][:2] + [("HRNetV2-W18-small-v2", "hrnet_w18_small_v2", "h3r", 64)]
    big = 2 if a.smoke else 32
    train_batch = 2 if a.smoke else (a.train_batch or (32 if device.type == "cuda" else 8))
    repeat = 1 if a.smoke else a.repeat
    cores = 1 if a.smoke else (os.cpu_count() or 1)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows = []
    for label, name, head, size in models:
        torch.manual_seed(0)
        model = build(name, head, size, device)
        row = [f"{label} ({head} head)", size, f"{count_parameters(model) / 1e6:.2f} M", f"{gflops(name, head, size):.2f}"]
        if device.type == "cpu":
            torch.set_num_threads(1)
            row += [f"{inference_ms(model, size, 1, device, repeat=repeat):.1f}",
                    f"{inference_ms(model, size, big, device, repeat=max(1, repeat // 2)):.1f}"]
            torch.set_num_threads(a.threads or cores)
            row.append(f"{train_images_per_s(model, head, size, train_batch, device, steps=max(1, repeat // 2)):.2f}")
        else:
            row += [f"{inference_ms(model, size, 1, device, repeat=repeat):.2f}",
                    f"{inference_ms(model, size, big, device, repeat=repeat):.3f}",
                    f"{inference_ms(model, size, big, device, repeat=repeat, bf16=True):.3f}",
                    f"{train_images_per_s(model, head, size, train_batch, device, steps=repeat):.0f}",
                    f"{train_images_per_s(model, head, size, train_batch, device, steps=repeat, bf16=True):.0f}"]
        rows.append(row)
        print(" | ".join(str(c) for c in row), flush=True)
    if device.type == "cpu":
        header = ["model", "input px", "params", "GFLOPs", "ms/face batch 1 (1 thread)", f"ms/face batch {big} (1 thread)",
                  f"train images/s (batch {train_batch}, {a.threads or cores} threads)"]
    else:
        header = ["model", "input px", "params", "GFLOPs", "ms/face batch 1 fp32", f"ms/face batch {big} fp32",
                  f"ms/face batch {big} bf16", f"train images/s fp32 (batch {train_batch})", "train images/s bf16"]
    md = (f"### Backbones on {'CUDA' if device.type == 'cuda' else 'the CPU'} (`python benchmarks/backbones.py"
          f"{' --device cuda' if device.type == 'cuda' else ''} --write`)\n\n"
          f"On {machine_description(a.device)}; load average {load:.2f} when it started. GFLOPs: one forward at batch 1, "
          "2 per multiply-accumulate of convolutions and matrix products (torch.utils.flop_counter). Inference: eval "
          "mode, no_grad, median of repeats / batch. Training: forward + the head's loss + backward + Adam on random "
          "tensors (no data loading).\n\n" + markdown_table(header, rows))
    print(md)
    if a.write and not a.smoke:
        write_section(f"backbones-{device.type}", md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

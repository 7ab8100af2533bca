"""``hih convert --released PATH --out CKPT``: released weights (HIH, H3R, HRNet-facial) as a hihlib checkpoint.

The work is done by ``hihlib.inference.released_hih`` (HIH) and ``hihlib.inference.released_h3r`` (the family's
recognition, H3R and HRNet-facial); this module only registers the command, and imports torch when the
command runs, not when ``hih`` starts.
"""

from __future__ import annotations

HELP = "convert released HIH, H3R or HRNet-facial weights into a hihlib checkpoint (for hih eval / predict)"


def register(sub) -> None:
    p = sub.add_parser("convert", help=HELP, description=(
        "Read a checkpoint released with a paper and recognise its family from its keys: HIH "
        "(starhiking/HeatmapInHeatmap, a dict with 'state_dict'), H3R (baoshengyu/H3R, model.pth, with the "
        "config.yaml beside it when present) or HRNet-facial (HRNet/HRNet-Facial-Landmark-Detection, plain or "
        "'module.'-prefixed). Every tensor is mapped onto hihlib's network, built as released, and the "
        "checkpoint's codec decodes in the released coordinate frame. A file of no known family, or a key or "
        "shape that does not fit, is reported in one line."))
    p.add_argument("--released", required=True, metavar="PATH", help="the released file (WFLW.pth, model.pth, HR18-WFLW.pth)")
    p.add_argument("--out", required=True, metavar="CKPT", help="the hihlib checkpoint to write")
    p.add_argument("--input-size", type=int, default=None,
                   help="crop side the network was trained on (pixels; default: H3R's config.yaml, else 256)")
    p.add_argument("--box", choices=["dataset", "landmarks"], default=None,
                   help="crop boxes that hih eval uses with this checkpoint (default: H3R's INPUT.BBOX, P1 = landmarks, "
                        "P2 = dataset; else dataset. The released HIH test crops were prepared beforehand, so neither "
                        "is theirs exactly)")
    p.add_argument("--scale", type=float, default=None, help="crop side = scale x box side (default 1.25)")
    p.add_argument("--dataset", choices=["wflw", "300w", "cofw"], default=None,
                   help="the landmark scheme (default: from H3R's config.yaml or the landmark count)")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    from .released_h3r import convert_any

    out, family = convert_any(args.released, args.out, input_size=args.input_size, box=args.box, scale=args.scale,
                              dataset=args.dataset)
    frame = {"HIH": "hih codec, frame released_hih", "H3R": "h3r codec, frame released_h3r",
             "HRNet-facial": "gaussian codec, quarter decoding"}[family]
    print(f"wrote {out} ({family} weights; {frame}; hih eval --checkpoint {out} ...)")
    return 0

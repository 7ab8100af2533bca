"""``hih convert --released PATH --out CKPT``: the authors' released HIH weights as a hihlib checkpoint.

The work is done by ``hihlib.models.released`` (key mapping, architecture, codec frame); this module only
registers the command, and imports torch when the command runs, not when ``hih`` starts.
"""

from __future__ import annotations

HELP = "convert the released HIH weights into a hihlib checkpoint (for hih eval / predict)"


def register(sub) -> None:
    p = sub.add_parser("convert", help=HELP, description=(
        "Read a checkpoint released with the HIH paper (starhiking/HeatmapInHeatmap: a dict with 'state_dict'), "
        "map every tensor onto hihlib's hourglass (built with align_corners=True up-sampling, as released) and "
        "write a hihlib checkpoint whose codec decodes in the released coordinate frame. "
        "A key or shape that does not fit is reported in one line."))
    p.add_argument("--released", required=True, metavar="PATH", help="the released checkpoint (e.g. WFLW.pth)")
    p.add_argument("--out", required=True, metavar="CKPT", help="the hihlib checkpoint to write")
    p.add_argument("--input-size", type=int, default=256, help="crop side the network was trained on (pixels)")
    p.add_argument("--box", choices=["dataset", "landmarks"], default="dataset",
                   help="crop boxes that hih eval uses with this checkpoint (the released test crops were prepared "
                        "beforehand, so neither is theirs exactly)")
    p.add_argument("--scale", type=float, default=1.25, help="crop side = scale x box side, for hih eval / predict")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    from .models.released import convert_released

    out = convert_released(args.released, args.out, input_size=args.input_size, box=args.box, scale=args.scale)
    print(f"wrote {out} (hih codec, frame released_hih; hih eval --checkpoint {out} ...)")
    return 0

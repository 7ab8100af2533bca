"""``hih data check`` and ``hih data prepare`` (``hih data synth`` comes from ``synthetic_export``).

``hih data check ROOT --dataset wflw|cofw|300w`` opens every split, lists every malformed line,
unreadable image, flag/subset-list disagreement and count that differs from the official one
(each naming the file and line and what was expected), and exits 2 when it found any.
``--allow-counts`` turns count differences into warnings (for small synthetic exports).

``hih data prepare ROOT --dataset ... --out CACHE`` writes the crop cache of ``hihlib.data.cache``
for every split (reusing a valid cache, rebuilding a stale one).
"""

from __future__ import annotations

import importlib.util
import sys

from ..errors import DataError, HihError
from . import cofw, w300, wflw

DATASET_SPLITS = {
    "wflw": ("train", "test"),
    "cofw": ("train", "test"),
    # "full" is common + challenge: checking it again would report every problem twice.
    "300w": ("train", "common", "challenge", "private"),
}
EXPECTED = {"wflw": wflw.EXPECTED_COUNTS, "cofw": cofw.EXPECTED_COUNTS, "300w": w300.EXPECTED_COUNTS}


def _open(dataset: str, root, split: str, skip_bad: bool):
    from . import open_dataset

    return open_dataset(dataset, root, split, skip_bad=skip_bad)


def check_dataset(root, dataset: str, *, splits=None, allow_counts: bool = False, images: bool = True,
                  progress: bool = False, out=print) -> tuple[list[str], list[str]]:
    """Validate a dataset download. Returns (errors, warnings) as printable lines; ``out`` gets a
    summary line per split."""
    import warnings as _warnings

    errors: list[str] = []
    warns: list[str] = []
    expected = EXPECTED[dataset]

    def count(what: str, found: int, want: int, where) -> None:
        if found != want:
            msg = str(DataError(where, None, f"{want} {what} (the official count)", str(found)))
            (warns if allow_counts else errors).append(msg)

    for split in splits or DATASET_SPLITS[dataset]:
        try:
            with _warnings.catch_warnings():
                _warnings.simplefilter("ignore")  # skipped samples are listed below, one by one
                src = _open(dataset, root, split, skip_bad=True)
        except DataError as e:
            errors.append(str(e))
            out(f"{dataset} {split}: cannot be read")
            continue
        errors += [str(e) for e in src.skipped] + [str(e) for e in src.problems]
        where = getattr(src, "list_file", None) or getattr(src, "mat_file", None) or src.root
        count(f"faces in the {split} split", len(src.records) + len(src.skipped), expected[split], where)
        if dataset == "wflw" and split == "test":
            for attribute, n in src.subset_counts().items():
                count(f"test faces with the {attribute} flag", n, wflw.EXPECTED_SUBSETS[attribute], where)
        if dataset == "300w":
            for folder in src.missing_folders:
                errors.append(str(DataError(folder, None, f"the 300W folder of split {split!r}", "no such folder")))
        bad_images = src.check_images(progress=progress) if images else []
        errors += [str(e) for e in bad_images]
        out(f"{dataset} {split}: {len(src.records)} faces read, {len(src.skipped)} malformed, "
            f"{len(bad_images)} unreadable image(s)" + ("" if images else " (images not checked)"))
    return errors, warns


def cmd_check(args) -> int:
    errors, warns = check_dataset(args.root, args.dataset, splits=args.split and [args.split],
                                  allow_counts=args.allow_counts, images=not args.no_images,
                                  progress=sys.stderr.isatty())
    for w in warns:
        print(f"warning: {w}", file=sys.stderr)
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    if errors:
        raise HihError(f"{len(errors)} problem(s) in {args.dataset} at {args.root}")
    print(f"{args.dataset} at {args.root}: OK" + (f" ({len(warns)} warning(s))" if warns else ""))
    return 0


def cmd_prepare(args) -> int:
    from .cache import prepare_cache

    for split in ([args.split] if args.split else DATASET_SPLITS[args.dataset]):
        src = _open(args.dataset, args.root, split, skip_bad=args.skip_bad)
        if src.skipped:
            print(f"{args.dataset} {split}: skipped {len(src.skipped)} bad sample(s) (--skip-bad); first: {src.skipped[0]}")
        index, built = prepare_cache(src, args.out, cache_scale=args.cache_scale, cache_size=args.cache_size,
                                     force=args.force, progress=args.progress)
        state = "built" if built else "reused (up to date)"
        print(f"{args.dataset} {split}: {index['count']} faces, {state}: {args.out}/{index['images']}")
    return 0


def register(subparsers) -> None:
    data = subparsers.add_parser("data", help="check, prepare or synthesise face datasets")
    sub = data.add_subparsers(dest="data_command", metavar="ACTION")
    data.set_defaults(func=lambda args: (data.print_help(), 1)[1])

    check = sub.add_parser("check", help="validate a WFLW / COFW / 300W download (counts, lines, images)")
    check.add_argument("root", help="dataset folder (WFLW: holds WFLW_annotations/ and WFLW_images/)")
    check.add_argument("--dataset", required=True, choices=sorted(DATASET_SPLITS))
    check.add_argument("--split", default=None, help="check one split only")
    check.add_argument("--allow-counts", action="store_true",
                       help="report face counts that differ from the official ones as warnings (small exports)")
    check.add_argument("--no-images", action="store_true", help="do not decode the images (faster)")
    check.set_defaults(func=cmd_check)

    prep = sub.add_parser("prepare", help="cache loosely cropped faces for fast training")
    prep.add_argument("root")
    prep.add_argument("--dataset", required=True, choices=sorted(DATASET_SPLITS))
    prep.add_argument("--out", required=True, help="cache folder")
    prep.add_argument("--split", default=None, help="prepare one split only")
    prep.add_argument("--cache-scale", type=float, default=2.0, help="crop side / box side (default 2.0)")
    prep.add_argument("--cache-size", type=int, default=384, help="cached crop side in pixels (default 384)")
    prep.add_argument("--skip-bad", action="store_true", help="leave out malformed samples instead of failing")
    prep.add_argument("--force", action="store_true", help="rebuild even if the cache is up to date")
    prep.add_argument("--progress", action="store_true", help="show a progress bar")
    prep.set_defaults(func=cmd_prepare)

    # Engineer B's `hih data synth`; only a missing module is tolerated, not a broken one.
    if importlib.util.find_spec("hihlib.data.synthetic_export") is not None:
        from .synthetic_export import register_synth

        register_synth(sub)

"""``hih data check`` and ``hih data prepare`` (``hih data synth`` comes from ``synthetic_export``).

``hih data check ROOT --dataset wflw|cofw|300w`` opens every split, lists every malformed line,
unreadable image, flag/subset-list disagreement and count that differs from the official one
(each naming the file and line and what was expected), and exits 2 when it found any.
``--allow-counts`` turns count differences into warnings (for a subset of a download). An export
written by ``hih data synth`` is recognised by its record (``hih_synthetic_<format>.json``) and its
counts are checked against the ones it was written with instead of the official ones.

``hih data prepare ROOT --dataset ... --out CACHE`` writes the crop cache of ``hihlib.data.cache``
for every split (reusing a valid cache, rebuilding a stale one).
"""

from __future__ import annotations

import importlib.util
import sys

from ..errors import DataError, HihError
from .datasets import DATASETS, FILE_DATASETS

# the splits ``data check`` opens (300W's "full" is common + challenge: checking it again would report
# every problem twice) and their official counts, from the table of ``datasets.py``
DATASET_SPLITS = {n: DATASETS[n].check_splits for n in FILE_DATASETS}
EXPECTED = {n: DATASETS[n].counts for n in FILE_DATASETS}


def _open(dataset: str, root, split: str, skip_bad: bool):
    from . import open_dataset

    return open_dataset(dataset, root, split, skip_bad=skip_bad)


def check_dataset(root, dataset: str, *, splits=None, allow_counts: bool = False, images: bool = True,
                  progress: bool = False, out=print) -> tuple[list[str], list[str]]:
    """Validate a dataset download. Returns (errors, warnings) as printable lines; ``out`` gets a
    summary line per split."""
    import warnings as _warnings

    from .synthetic_export import manifest_path, read_manifest

    errors: list[str] = []
    warns: list[str] = []
    synth = read_manifest(root, dataset)
    if synth is None:
        expected, expected_subsets, source = EXPECTED[dataset], DATASETS[dataset].subset_counts, "the official count"
    else:
        expected, expected_subsets = synth["counts"], synth["subsets"]
        source = f"written by hih data synth, {manifest_path(root, dataset).name}"
        out(f"{dataset} at {root}: a synthetic export by hih data synth (seed {synth.get('seed')}); "
            f"counts checked against {manifest_path(root, dataset).name}")

    def count(what: str, found: int, want: int | None, where) -> None:
        if want is not None and found != want:
            msg = str(DataError(where, None, f"{want} {what} ({source})", str(found)))
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
        count(f"faces in the {split} split", len(src.records) + len(src.skipped), expected.get(split), where)
        if dataset == "wflw" and split == "test":
            for attribute, n in src.subset_counts().items():
                count(f"test faces with the {attribute} flag", n, expected_subsets.get(attribute), where)
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
        counts = sum("(the official count)" in e for e in errors)
        hint = (f"; {counts} of them are face counts that differ from the official ones: --allow-counts reports "
                "those as warnings (for a subset or an export)") if counts else ""
        raise HihError(f"{len(errors)} problem(s) in {args.dataset} at {args.root}{hint}")
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
    data = subparsers.add_parser("data", help="check, prepare or synthesise face datasets",
                                 description="Check a dataset download, cache its face crops for training, or "
                                 "write synthetic faces in its format. Run 'hih data ACTION --help' for options.")
    sub = data.add_subparsers(dest="data_command", metavar="ACTION")
    data.set_defaults(func=lambda args: (data.print_help(), 1)[1])
    dataset_help = "dataset format of ROOT"

    check = sub.add_parser("check", help="validate a WFLW / COFW / 300W download (counts, lines, images)",
                           description="Open every split, list every malformed line, unreadable image and count "
                           "that differs from the official one (or from the record of a hih data synth export), "
                           "and exit 2 if any.")
    check.add_argument("root", help="dataset folder (WFLW: holds WFLW_annotations/ and WFLW_images/; COFW: the two "
                       ".mat files; 300W: afw/, helen/, lfpw/, ibug/, 300W/)")
    check.add_argument("--dataset", required=True, choices=sorted(DATASET_SPLITS), help=dataset_help)
    check.add_argument("--split", default=None, help="check one split only (default: every split)")
    check.add_argument("--allow-counts", action="store_true",
                       help="report face counts that differ from the official ones as warnings (a subset of "
                       "a download)")
    check.add_argument("--no-images", action="store_true", help="do not decode the images (faster)")
    check.set_defaults(func=cmd_check)

    prep = sub.add_parser("prepare", help="cache loosely cropped faces for fast training",
                          description="Write the crop cache that training reads (reused when up to date).")
    prep.add_argument("root", help="dataset folder, as for hih data check")
    prep.add_argument("--dataset", required=True, choices=sorted(DATASET_SPLITS), help=dataset_help)
    prep.add_argument("--out", required=True, help="cache folder")
    prep.add_argument("--split", default=None, help="prepare one split only (default: every split)")
    prep.add_argument("--cache-scale", type=float, default=2.0, help="crop side / box side")
    prep.add_argument("--cache-size", type=int, default=384, help="cached crop side in pixels")
    prep.add_argument("--skip-bad", action="store_true", help="leave out malformed samples instead of failing")
    prep.add_argument("--force", action="store_true", help="rebuild even if the cache is up to date")
    prep.add_argument("--progress", action="store_true", help="show a progress bar")
    prep.set_defaults(func=cmd_prepare)

    # Engineer B's `hih data synth`; only a missing module is tolerated, not a broken one.
    if importlib.util.find_spec("hihlib.data.synthetic_export") is not None:
        from .synthetic_export import register_synth

        register_synth(sub)

"""``hih demo``: synthetic faces, three heads, every decoder, two heatmap sizes (work in progress)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("demo", help="train Gaussian, H3R and HIH models on synthetic faces and compare decoders")
    p.set_defaults(func=lambda a: print("hih demo: not implemented yet") or 1)

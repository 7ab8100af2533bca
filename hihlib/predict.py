"""``hih predict``: face detection, crop, landmarks, mapped back to the image (work in progress)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("predict", help="detect faces in an image and predict their landmarks")
    p.set_defaults(func=lambda a: print("hih predict: not implemented yet") or 1)

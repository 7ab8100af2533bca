"""Write the README's demo block from the committed demo results.

    hih demo --out figures            # regenerates figures/demo_results.json and the demo figures
    hih demo --long --out figures/long
    python tools/demo_seeds.py        # figures/demo_seeds.json (run-to-run variation)
    python tools/update_readme.py     # README.md's demo and long-run blocks from their results files

tests/test_readme.py checks that README.md holds exactly this block, so the text cannot drift from
the numbers.
"""

import json
import sys
from pathlib import Path

from hihlib.studies.claims import (LONG_BEGIN, LONG_END, README_BEGIN, README_END, SEEDS_BEGIN, SEEDS_END, readme_block,
                           readme_long_block, readme_seeds_block)
from hihlib.io import write_text

ROOT = Path(__file__).resolve().parent.parent


def updated(readme: str, block: str, begin: str = README_BEGIN, end_marker: str = README_END) -> str:
    start, end = readme.index(begin), readme.index(end_marker)
    return readme[:start + len(begin)] + "\n" + block + readme[end:]


def main() -> int:
    readme = (ROOT / "README.md").read_text()
    for begin, end, source, make in ((README_BEGIN, README_END, "figures/demo_results.json", readme_block),
                                     (LONG_BEGIN, LONG_END, "figures/long/demo_results.json", readme_long_block),
                                     (SEEDS_BEGIN, SEEDS_END, "figures/demo_seeds.json", readme_seeds_block)):
        if begin not in readme or end not in readme:
            print(f"README.md has no {begin} ... {end} block", file=sys.stderr)
            return 2
        readme = updated(readme, make(json.loads((ROOT / source).read_text())), begin, end)
        print(f"README.md: block written from {source}")
    write_text(ROOT / "README.md", readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())

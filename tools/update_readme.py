"""Write the README's demo block from the committed demo results.

    hih demo --out figures            # regenerates figures/demo_results.json and the demo figures
    python tools/update_readme.py     # puts hihlib.demo.readme_block(figures/demo_results.json) in README.md

tests/test_readme.py checks that README.md holds exactly this block, so the text cannot drift from
the numbers.
"""

import json
import sys
from pathlib import Path

from hihlib.demo import README_BEGIN, README_END, readme_block
from hihlib.io import write_text

ROOT = Path(__file__).resolve().parent.parent


def updated(readme: str, block: str) -> str:
    start, end = readme.index(README_BEGIN), readme.index(README_END)
    return readme[:start + len(README_BEGIN)] + "\n" + block + readme[end:]


def main() -> int:
    results = json.loads((ROOT / "figures" / "demo_results.json").read_text())
    readme = (ROOT / "README.md").read_text()
    if README_BEGIN not in readme or README_END not in readme:
        print(f"README.md has no {README_BEGIN} ... {README_END} block", file=sys.stderr)
        return 2
    write_text(ROOT / "README.md", updated(readme, readme_block(results)))
    print("README.md: demo block written from figures/demo_results.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())

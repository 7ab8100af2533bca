"""The reference facts the project cites live in the repository, and every citation points to them."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CITING = ["configs", "hihlib", "tests", "notebooks", "benchmarks", "tools"]


def test_reference_facts_are_in_the_repository_with_their_sources():
    text = (ROOT / "docs" / "REFERENCE.md").read_text()
    assert "## Sources" in text and "arXiv:2104.03100" in text and "arXiv:2009.00225" in text
    for section in ("## 1. The two methods", "## 2. Datasets", "## 3. Landscape", "## 6. The released HIH checkpoint"):
        assert section in text


def test_every_citation_of_REFERENCE_md_names_docs_REFERENCE_md():
    bare = []
    for folder in CITING:
        for path in sorted((ROOT / folder).rglob("*")):
            if (path.suffix not in (".py", ".yaml", ".ipynb", ".md") or ".ipynb_checkpoints" in path.parts
                    or path == Path(__file__).resolve()):
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if re.search(r"(?<!docs/)REFERENCE\.md", line):
                    bare.append(f"{path.relative_to(ROOT)}:{n}")
    assert bare == [], f"cite docs/REFERENCE.md, not REFERENCE.md: {bare}"

"""Blame checker speed: sentences per second on a 10,000-sentence corpus.

The corpus is built deterministically from the labelled sentences in tests/data
(both corpora, blameful and blameless), shuffled with a fixed seed, and laid out
as paragraphs in the template's sections, 40 sentences a postmortem.

    python benchmarks/blame_speed.py [--sentences 10000]
"""

from __future__ import annotations

import argparse
import csv
import random
import time
from pathlib import Path

from pmkb.core.blame import check_blame_file, settings_from_config
from pmkb.core.config import Config
from pmkb.core.findings import Findings
from pmkb.core.model import Postmortem
from pmkb.core.parse import parse_text

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
SECTIONS = ["Summary", "Impact", "Root Cause", "Contributing Factors", "What Went Well", "What Went Poorly",
            "Lessons Learned"]


def corpus(n: int, seed: int = 11) -> list[str]:
    rows = []
    for name in ("blame_corpus.tsv", "blame_corpus_extra.tsv"):
        with (DATA / name).open(encoding="utf-8") as fh:
            rows += [r["sentence"] for r in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)]
    rng = random.Random(seed)
    return [rng.choice(rows) for _ in range(n)]


def documents(sentences: list[str], per_doc: int = 40) -> list[str]:
    docs = []
    for i in range(0, len(sentences), per_doc):
        chunk = sentences[i:i + per_doc]
        body = []
        for k, section in enumerate(SECTIONS):
            part = chunk[k * len(chunk) // len(SECTIONS):(k + 1) * len(chunk) // len(SECTIONS)]
            body += [f"## {section}", "", " ".join(part), ""]
        docs.append(f"---\nid: BEN-{i}\ntitle: Bench\ndate: 2024-01-01\nseverity: SEV3\n"
                    f"authors: [Priya Raman, Ben Carter]\n---\n\n" + "\n".join(body))
    return docs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sentences", type=int, default=10_000)
    args = ap.parse_args()
    cfg = Config.from_options({}, root=Path("."), docs_dir=".")
    settings = settings_from_config({})
    docs = documents(corpus(args.sentences))
    parsed = [parse_text(d, Postmortem(f"d{i}.md", f"d{i}.md"), Findings(f"d{i}.md", cfg), cfg)[0]
              for i, d in enumerate(docs)]
    best, found = None, 0
    for _ in range(3):
        t = time.perf_counter()
        found = 0
        for pm in parsed:
            f = Findings(pm.path, cfg, pm.status)
            check_blame_file(pm, f, settings)
            found += len(f.items)
        spent = time.perf_counter() - t
        best = spent if best is None else min(best, spent)
    print(f"{args.sentences} sentences in {len(parsed)} postmortems: {best:.3f} s, "
          f"{args.sentences / best:,.0f} sentences/s ({found} findings)")


if __name__ == "__main__":
    main()

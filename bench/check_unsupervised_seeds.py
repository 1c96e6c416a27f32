"""CMP-unsupervised against the cascades over several pipeline runs (seeds): is the ordering stable?

    python bench/check_unsupervised_seeds.py runs/u4 runs/u4s1 runs/u4s2

Each argument is the ``--out`` folder of one ``voxface unsupervised-pipeline`` run (e.g. the same
settings with ``--set seed=K``). Reads each run's ``pipeline.json`` and prints the mean ARE of
CMP-unsupervised, Base-1, Base-2 and the oracles per run, their mean and standard deviation over
runs, and in how many runs CMP-unsupervised is below each cascade and by how much.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

METHODS = ("CMP-unsupervised", "Base-1", "Base-2", "mean-face oracle", "gender oracle", "CMP-supervised")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="unsupervised-pipeline output folders")
    args = parser.parse_args()
    table = {}
    for run in args.runs:
        path = run / "pipeline.json"
        if not path.is_file():
            parser.error(f"{run} has no pipeline.json: run `voxface unsupervised-pipeline --out {run}` first")
        table[run] = json.loads(path.read_text())["mean_ARE"]
    print("run".ljust(16) + "".join(m.rjust(18) for m in METHODS))
    for run, are in table.items():
        print(str(run.name).ljust(16) + "".join(f"{are[m]:18.4f}" for m in METHODS))
    values = {m: np.array([are[m] for are in table.values()]) for m in METHODS}
    print("mean ± sd".ljust(16) + "".join(f"{v.mean():11.4f} ± {v.std(ddof=1) if len(v) > 1 else 0:.4f}"
                                           for v in values.values()))
    cmp = values["CMP-unsupervised"]
    for base in ("Base-1", "Base-2"):
        gap = values[base] - cmp
        print(f"CMP-unsupervised below {base} in {int((gap > 0).sum())} of {len(gap)} runs; "
              f"{base} − CMP-unsupervised: mean {gap.mean():+.4f}, smallest {gap.min():+.4f}, "
              f"relative {100 * gap.mean() / values[base].mean():+.1f}%")


if __name__ == "__main__":
    main()

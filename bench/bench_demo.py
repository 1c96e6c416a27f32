"""The main job end to end: wall time per stage and peak memory of `voxface demo` on a fresh folder.

    python bench/bench_demo.py [--keep DIR]

Runs `voxface demo` in a subprocess (fresh corpus and runs in a temporary folder unless --keep),
then prints its stage times, its summary, and the peak resident memory of it and its workers
(getrusage of the reaped process tree). Target: <= 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", help="folder to keep the corpus and runs in (default: a temporary one)")
    parser.add_argument("--model", default="builtin")
    args = parser.parse_args()
    root = Path(args.keep or tempfile.mkdtemp())
    voxface = Path(sys.executable).with_name("voxface")
    start = time.perf_counter()
    result = subprocess.run([str(voxface), "demo", "--out", str(root / "runs"), "--corpus", str(root / "corpus"),
                             "--model", args.model, "--quiet"], capture_output=True, text=True)
    wall = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(result.stdout)
    if result.returncode != 0:
        print(result.stderr[-3000:])
        raise SystemExit(result.returncode)
    metrics = json.loads((root / "runs" / "supervised" / "metrics.json").read_text())
    print(f"demo wall time: {wall:.0f} s (target <= {TARGET_S} s, ratio {wall / TARGET_S:.2f})")
    print(f"peak resident memory (largest process of the tree): {peak_mb:.0f} MB")
    print(f"share of the mean-face-to-ceiling gap recovered: {metrics.get('share_of_ceiling_gap_recovered')}")
    print(f"outputs in {root}")


if __name__ == "__main__":
    main()

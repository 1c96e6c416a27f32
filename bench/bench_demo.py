"""The main job end to end: wall time per stage, peak memory and the headline result of `voxface demo`.

    python bench/bench_demo.py [--keep DIR]

Runs `voxface demo` in a subprocess on a fresh folder (a temporary one unless --keep), then prints
its stage times (from ``demo.json``), the wall time against the target (<= 180 s on 2 cores), the
peak resident memory of the process tree (getrusage of the reaped children) and whether
CMP-supervised still stays >= 15% below the gender oracle (the README and docs/benchmarks.md state both).
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

TARGET_S = 180
GAIN_OVER_GENDER_ORACLE = -0.15


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
    stages = json.loads((root / "runs" / "demo.json").read_text())["seconds"]
    metrics = json.loads((root / "runs" / "supervised" / "metrics.json").read_text())
    versus = metrics["statistics"]["methods"]["CMP-supervised"]["vs"]["gender oracle"]
    gain = versus["gain"]
    print("stage          seconds")
    for name, seconds in stages.items():
        print(f"{name:14s} {seconds:7.1f}")
    print(f"demo wall time: {wall:.0f} s (target <= {TARGET_S} s, ratio {wall / TARGET_S:.2f})")
    print(f"peak resident memory (largest process of the tree): {peak_mb:.0f} MB")
    print(f"CMP-supervised vs gender oracle: {gain['estimate']:+.1%} (95% CI [{gain['low']:+.1%}, "
          f"{gain['high']:+.1%}], p = {versus['p_value']:.4f}; needed <= {GAIN_OVER_GENDER_ORACLE:+.0%}: "
          f"{'yes' if gain['estimate'] <= GAIN_OVER_GENDER_ORACLE else 'NO'})")
    print(f"share of the mean-face-to-ceiling gap recovered: {metrics.get('share_of_ceiling_gap_recovered'):.3f}")
    print(f"outputs in {root}")


if __name__ == "__main__":
    main()

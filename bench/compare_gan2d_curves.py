"""Held-out learning curves of several gan2d runs in one figure (PSNR, face found, R@1 against epochs).

Usage: .venv/bin/python bench/compare_gan2d_curves.py --out FIGURE.png [--title TITLE] LABEL=RUN [LABEL=RUN ...]

Each RUN is a gan2d run folder trained with ``eval_every`` > 0 (its ``logs/metrics.csv``); the
figure is how docs/gan2d.md compares recipes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from voxface.errors import VoxfaceError
from voxface.reports.gan2d_progress import plot_compared_curves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="LABEL=RUN")
    parser.add_argument("--out", required=True, help="the PNG to write")
    parser.add_argument("--title", default="held-out voices")
    args = parser.parse_args()
    runs = {}
    for item in args.runs:
        label, _, run = item.rpartition("=")
        csv = Path(run) / "logs" / "metrics.csv"
        if not label or not csv.is_file():
            raise SystemExit(f"{item}: give LABEL=RUN with RUN a gan2d run folder that has logs/metrics.csv")
        runs[label] = csv
    try:
        print(f"written: {plot_compared_curves(args.out, runs, args.title)}")
    except VoxfaceError as error:
        raise SystemExit(str(error))


if __name__ == "__main__":
    main()

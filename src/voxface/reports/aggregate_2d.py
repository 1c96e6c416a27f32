"""``voxface aggregate`` of voice-to-image runs: each generator's ``evaluate-2d`` scores over seeds as
mean ± sd with a t interval, and the generators compared seed by seed (``evaluate.statistics``).

The runs are gan2d runs evaluated by ``voxface evaluate-2d`` (their ``metrics.json``), one per
(generator, seed), on one corpus, speaker run and test set; each generator needs at least 2 seeds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import VoxfaceError
from ..evaluate.statistics import aggregate_seeds, compare_seeds

SCORES = {
    "identity accuracy": lambda m: m["identity_accuracy"],
    "verifier's ceiling": lambda m: m["real_identity_accuracy"],
    "1:2": lambda m: m["matching_1v2"],
    "R@1": lambda m: m["recall_at"]["1"],
    "face found": lambda m: m["generated_face_detection_rate"],
    "PSNR": lambda m: m["image_quality"]["PSNR"],
    "SSIM": lambda m: m["image_quality"]["SSIM"],
}
"""Score name -> how to read it from an ``evaluate-2d`` metrics.json (rates in [0, 1], PSNR in dB)."""
COMPARED = ("identity accuracy", "1:2", "R@1", "face found", "PSNR")
"""The scores on which generators are compared seed by seed."""
EXPERIMENT_KEYS = ("corpus", "speaker_run", "test_identities", "tau", "face_embedder")
"""What the seeds of one experiment share (the generators' settings other than the seed may differ)."""


def is_image_evaluation(saved) -> bool:
    """Whether a metrics.json's content is an ``evaluate-2d`` evaluation."""
    return isinstance(saved, dict) and "generator" in saved and "recall_at" in saved


def aggregate_image_runs(files: list[Path], saved: list[dict], seeds: list, allow_mixed: bool) -> dict:
    """Each generator's scores over its seeds and each pair of generators compared on their common seeds.

    Args:
        files: the runs' metrics.json paths; ``saved`` their contents (``evaluate-2d``'s);
            ``seeds`` each run's seed (None when unknown).
        allow_mixed: aggregate runs that are not seeds of one experiment, under a warning.

    Returns:
        {"runs", "metric": "voice-to-image scores", "warning", "generators": {name: {score:
        :func:`aggregate_seeds`}}, "comparisons": [{"method", "baseline", "score", "seeds", ...
        :func:`compare_seeds`}]}.
    """
    for f, s in zip(files, saved):
        if not is_image_evaluation(s) or s.get("image_quality") is None:
            raise VoxfaceError(f"{f} is not the metrics.json of a gan2d run evaluated with `voxface evaluate-2d`; "
                               "aggregate runs of one kind")
    problem = _not_one_experiment(files, saved, seeds)
    if problem and not allow_mixed:
        raise VoxfaceError(f"these runs are not seeds of one experiment: {problem}; aggregate the seeds of one "
                           "experiment (or pass --allow-mixed to aggregate them anyway, with a warning)")
    by_generator: dict[str, dict] = {}
    for f, s, seed in zip(files, saved, seeds):
        by_generator.setdefault(s["generator"], {})[seed] = _scores(f, s)
    few = sorted(g for g, runs in by_generator.items() if len(runs) < 2)
    if few:
        raise VoxfaceError(f"generators {few} have fewer than 2 runs (seeds); aggregate needs at least 2 of each")
    generators = {g: {name: aggregate_seeds(np.array([r[name] for r in runs.values()])) for name in SCORES}
                  for g, runs in by_generator.items()}
    comparisons = []
    names = list(by_generator)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            common = [seed for seed in by_generator[a] if seed in by_generator[b]]
            if len(common) < 2:
                continue
            for score in COMPARED:
                comparisons.append({"method": a, "baseline": b, "score": score, "seeds": common, **compare_seeds(
                    np.array([by_generator[a][seed][score] for seed in common]),
                    np.array([by_generator[b][seed][score] for seed in common]))})
    return {"runs": [str(f) for f in files], "metric": "voice-to-image scores", "warning": problem,
            "generators": generators, "comparisons": comparisons}


def _scores(path: Path, saved: dict) -> dict[str, float]:
    """{score: value} of :data:`SCORES` from one evaluation; VoxfaceError naming the file when one is
    missing or not a finite number."""
    try:
        scores = {name: float(read(saved)) for name, read in SCORES.items()}
    except (KeyError, TypeError, ValueError) as error:
        raise VoxfaceError(f"{path} lacks a score of evaluate-2d ({error!r}); evaluate the run again with "
                           "`voxface evaluate-2d`") from None
    bad = sorted(name for name, value in scores.items() if not np.isfinite(value))
    if bad:
        raise VoxfaceError(f"{path} has no finite {', '.join(bad)}; evaluate the run again with `voxface evaluate-2d`")
    return scores


def _not_one_experiment(files: list[Path], saved: list[dict], seeds: list) -> str | None:
    """What makes these runs other than seeds of one experiment, or None."""
    for key in EXPERIMENT_KEYS:
        seen = {json.dumps(s.get(key), sort_keys=True) for s in saved}
        if len(seen) > 1:
            return f"{key} differs ({', '.join(f'{f}: {s.get(key)}' for f, s in zip(files, saved))})"
    if any(seed is None for seed in seeds):
        return f"{files[seeds.index(None)]} has no config.yaml with a seed"
    pairs = [(s["generator"], seed) for s, seed in zip(saved, seeds)]
    repeated = next((p for p in pairs if pairs.count(p) > 1), None)
    if repeated is not None:
        return f"{repeated[0]} seed {repeated[1]} twice"
    return None


def image_aggregate_markdown(summary: dict) -> list[str]:
    """The Markdown lines of :func:`aggregate_image_runs`' summary (after any warning)."""
    lines = [f"# Voice-to-image scores over seeds ({len(summary['runs'])} runs)", "",
             *(f"- `{r}`" for r in summary["runs"]), "",
             "Mean over seeds with its 95% t interval (rates in %, PSNR in dB).", "",
             "| generator | seeds | " + " | ".join(SCORES) + " |", "|---|---|" + "---|" * len(SCORES)]
    for name, scores in summary["generators"].items():
        n = next(iter(scores.values()))["n"]
        lines.append(f"| {name} | {n} | " + " | ".join(_interval(score, a) for score, a in scores.items()) + " |")
    if summary["comparisons"]:
        lines += ["", "Paired over common seeds: the mean difference (first − second), its 95% t interval, the "
                  "paired t test and the exact sign-flip test.", "",
                  "| first | second | score | difference | 95% CI | p (paired t) | p (sign-flip) |",
                  "|---|---|---|---|---|---|---|"]
        for c in summary["comparisons"]:
            d, scale = c["difference"], _scale(c["score"])
            lines.append(f"| {c['method']} | {c['baseline']} | {c['score']} | {scale * d['mean']:+.2f} | "
                         f"[{scale * d['ci']['low']:+.2f}, {scale * d['ci']['high']:+.2f}] | "
                         f"{c['paired_t_p']:.4f} | {c['sign_flip_p']:.4f} |")
    return lines


def _scale(score: str) -> float:
    return 1.0 if score in ("PSNR", "SSIM") else 100.0


def _interval(score: str, a: dict) -> str:
    s = _scale(score)
    digits = 3 if score == "SSIM" else 1
    return (f"{s * a['mean']:.{digits}f} [{s * a['ci']['low']:.{digits}f}, {s * a['ci']['high']:.{digits}f}]")

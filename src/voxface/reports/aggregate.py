"""``voxface aggregate``: one method over several runs (seeds) as mean ± sd with an interval, and
methods compared over the same seeds (``evaluate.statistics``).

Each run contributes its ``metrics.json`` (of ``evaluate``, ``evaluate-unsupervised`` or an
``unsupervised-pipeline`` folder) and, for every method in it, its mean ARE; gan2d runs evaluated by
``evaluate-2d`` are aggregated per generator instead (:mod:`voxface.reports.aggregate_2d`). The runs must be the
seeds of one experiment (methods are compared seed by seed, paired): runs that differ in what the
metrics record of the experiment (:data:`EXPERIMENT_KEYS`), the same run twice, or two runs of one
seed are refused, or with ``allow_mixed`` aggregated under a warning at the top of the report.
"""

from __future__ import annotations

from pathlib import Path

import json
import logging

import numpy as np

from ..errors import VoxfaceError
from ..evaluate.statistics import aggregate_seeds, compare_seeds, gain_texts, paired_comparison
from ..runs import atomic
from ..runs.folder import CONFIG_FILE, TRAINING, read_metrics
from ..runs.reading import read_json, read_yaml
from .aggregate_2d import aggregate_image_runs, image_aggregate_markdown, is_image_evaluation
from .voice_to_3d import ORACLES

METRICS_PLACES = ("metrics.json", "evaluation/metrics.json", "cmp/evaluation/metrics.json")
"""Where a run folder keeps its metrics: evaluate, evaluate-unsupervised, unsupervised-pipeline."""
BASELINES = (*ORACLES, "Base-1", "Base-2")
EXPERIMENT_KEYS = ("corpus", "method", "morphable_model", "n_test_identities", "utterances_per_identity")
"""What ``metrics.json`` records of the experiment; the seeds of one experiment agree on each."""

log = logging.getLogger(__name__)


def find_metrics(path: str | Path) -> Path:
    """The ``metrics.json`` of a run folder (or the file itself); VoxfaceError naming the path."""
    path = Path(path)
    if path.is_file():
        return path
    found = next((path / p for p in METRICS_PLACES if set(read_metrics((path / p).parent)) - {TRAINING}),
                 None)  # a run's metrics.json that holds only its training section is no evaluation
    if found is None:
        raise VoxfaceError(f"no metrics.json in {path} (looked for {', '.join(METRICS_PLACES)}); evaluate the run first")
    return found


def aggregate_runs(runs: list[str | Path], compare: list[tuple[str, str]] | None = None,
                   allow_mixed: bool = False) -> dict:
    """Mean ARE of every method over the runs, and the paired comparisons over seeds.

    Args:
        runs: at least 2 run folders or metrics files of the same experiment with different seeds.
        compare: (method, baseline) pairs; default every method against each of the oracles and
            cascades present (as the per-run reports do).
        allow_mixed: aggregate runs that are not seeds of one experiment, with a warning (in the log,
            in ``"warning"`` and at the top of the report) instead of an error.

    Returns:
        {"runs": [...], "methods": {name: aggregate_seeds}, "comparisons": [{"method", "baseline", ...}],
        "warning": None or what makes the runs incomparable}.

    Raises:
        VoxfaceError: for fewer than 2 runs, a damaged metrics file, or (without ``allow_mixed``) runs
            that are not seeds of one experiment.
    """
    if len(runs) < 2:
        raise VoxfaceError("aggregate needs at least 2 runs (seeds) of the same experiment")
    files = [find_metrics(r) for r in runs]
    saved = [read_json(f, "metrics file") for f in files]
    if is_image_evaluation(saved[0]):
        if compare:
            raise VoxfaceError("--compare names voice-to-3D methods; voice-to-image generators are all compared")
        return aggregate_image_runs(files, saved, [_seed(f) for f in files], allow_mixed)
    tables = [_methods_table(f, s) for f, s in zip(files, saved)]
    problem = _not_one_experiment(files, saved)
    if problem and not allow_mixed:
        raise VoxfaceError(f"these runs are not seeds of one experiment: {problem}; aggregate the seeds of one "
                           "experiment (or pass --allow-mixed to aggregate them anyway, with a warning)")
    if problem:
        log.warning("aggregating runs that are not seeds of one experiment: %s", problem)
    names = [n for n in tables[0] if all(n in t for t in tables)]
    values = {n: np.array([t[n]["ARE"]["mean"] for t in tables]) for n in names}
    pairs = compare or [(m, b) for m in names for b in BASELINES if b in values and b != m]
    unknown = sorted({name for pair in pairs for name in pair} - set(values))
    if unknown:
        raise VoxfaceError(f"methods {unknown} are not in every run; these are: {names}")
    by_identity = _seed_mean_per_identity(tables, names)
    comparisons = [{"method": m, "baseline": b, **compare_seeds(values[m], values[b]),
                    "over_identities": (paired_comparison(by_identity[m], by_identity[b])
                                        if m in by_identity and b in by_identity else None)}
                   for m, b in pairs]
    return {"runs": [str(f) for f in files], "metric": "mean ARE", "warning": problem,
            "methods": {n: aggregate_seeds(v) for n, v in values.items()}, "comparisons": comparisons}


def _not_one_experiment(files: list[Path], saved: list) -> str | None:
    """What makes these runs other than the seeds of one experiment, or None."""
    resolved = [f.resolve() for f in files]
    twice = sorted({str(f) for f in resolved if resolved.count(f) > 1})
    if twice:
        return f"{twice[0]} is given twice"
    for key in EXPERIMENT_KEYS:
        seen = {json.dumps(r.get(key), sort_keys=True) for r in saved if key in r}
        if len(seen) > 1:
            return f"{key} differs ({', '.join(f'{f}: {r.get(key)}' for f, r in zip(files, saved))})"
    names = [r.get("run") for r in saved if r.get("run")]
    if len(set(names)) < len(names):
        return f"the same run is given twice ({next(n for n in names if names.count(n) > 1)}, copied?)"
    seeds = [_seed(f) for f in files]
    known = [s for s in seeds if s is not None]
    repeated = next((s for s in known if known.count(s) > 1), None)
    if repeated is not None:
        return f"seed {repeated} twice ({', '.join(str(f) for f, s in zip(files, seeds) if s == repeated)})"
    return None


def _seed(metrics_file: Path):
    """The ``seed`` of the run a metrics file belongs to (its ``config.yaml``; for an ``evaluation/``
    folder, the run above it), or None when unknown."""
    run = metrics_file.parent.parent if metrics_file.parent.name == "evaluation" else metrics_file.parent
    config = run / CONFIG_FILE
    if not config.is_file():
        return None
    settings = read_yaml(config, "run settings")
    return settings.get("seed") if isinstance(settings, dict) else None


def _methods_table(path: Path, saved) -> dict:
    """The ``methods`` of metrics ``saved`` (read from ``path``): {name: {"ARE": {"mean": float, ...}, ...}};
    VoxfaceError naming the file when it is not the metrics of a voice-to-3D evaluation."""
    methods = saved.get("methods") if isinstance(saved, dict) else None
    if not isinstance(methods, dict) or not methods or not all(
            isinstance(m, dict) and isinstance(m.get("ARE"), dict) and _is_number(m["ARE"].get("mean"))
            for m in methods.values()):
        raise VoxfaceError(f"{path} is not the metrics.json of a voice-to-3D evaluation (no methods with a mean ARE); "
                           "give runs evaluated with `voxface evaluate`")
    return methods


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)


def _seed_mean_per_identity(tables: list[dict], names: list[str]) -> dict[str, np.ndarray]:
    """method -> (N,) its per-identity ARE averaged over the runs, for the methods whose every run
    lists the same number of identities (the runs share the corpus's test identities)."""
    found = {}
    for name in names:
        rows = [t[name]["ARE"].get("per_identity") for t in tables]
        if all(r is not None for r in rows) and len({len(r) for r in rows}) == 1:
            found[name] = np.mean(np.array(rows, dtype=np.float64), axis=0)
    return found


def write_aggregate(summary: dict, out: str | Path) -> Path:
    """``aggregate.json`` and ``aggregate.md`` in ``out``; returns the Markdown path."""
    out = Path(out)
    atomic.write_json(out / "aggregate.json", summary)
    n = len(summary["runs"])
    warning = ([f"**Warning: these runs are not seeds of one experiment ({summary['warning']}); the intervals and "
                "tests below compare what is not comparable.**", ""] if summary.get("warning") else [])
    if "generators" in summary:
        atomic.write_text(out / "aggregate.md", "\n".join([*warning, *image_aggregate_markdown(summary)]) + "\n")
        return out / "aggregate.md"
    lines = [*warning, f"# {summary['metric']} over {n} runs (seeds)", "", *(f"- `{r}`" for r in summary["runs"]), "",
             "| method | mean ± sd | 95% CI of the mean (t) | per run |", "|---|---|---|---|"]
    for name, a in summary["methods"].items():
        lines.append(f"| {name} | {a['mean']:.4f} ± {a['sd']:.4f} | [{a['ci']['low']:.4f}, {a['ci']['high']:.4f}] | "
                     + ", ".join(f"{v:.4f}" for v in a["values"]) + " |")
    lines += ["", "Paired over seeds: the mean difference (method − baseline; negative = lower error), its 95% t "
              "interval, the paired t test and the exact sign-flip test.", "",
              "| method | baseline | difference | 95% CI | p (paired t) | p (sign-flip) | significant at 5% |",
              "|---|---|---|---|---|---|---|"]
    for c in summary["comparisons"]:
        d = c["difference"]
        lines.append(f"| {c['method']} | {c['baseline']} | {d['mean']:+.4f} | [{d['ci']['low']:+.4f}, "
                     f"{d['ci']['high']:+.4f}] | {c['paired_t_p']:.4f} | {c['sign_flip_p']:.4f} | "
                     f"{'yes' if c['significant'] else 'no'} |")
    identity_level = [c for c in summary["comparisons"] if c["over_identities"] is not None]
    if identity_level:
        lines += ["", "Averaged over the seeds, per test identity: the gain (method / baseline − 1) with its "
                  "paired bootstrap interval over identities and the paired sign-flip test over identities "
                  "(with 5 seeds the exact sign-flip test over seeds cannot go below p = 0.0625).", "",
                  "| method | baseline | gain | 95% CI | p (sign-flip over identities) | significant at 5% |",
                  "|---|---|---|---|---|---|"]
        for c in identity_level:
            o = c["over_identities"]
            gain, interval = gain_texts(o["gain"])
            lines.append(f"| {c['method']} | {c['baseline']} | {gain} | {interval} | {o['p_value']:.4f} | "
                         f"{'yes' if o['significant'] else 'no'} |")
    atomic.write_text(out / "aggregate.md", "\n".join(lines) + "\n")
    return out / "aggregate.md"

"""Issue 22, item 8: ``aggregate`` takes only the seeds of one experiment. Runs of different corpora,
backbones or test sets, the same run twice, or two runs of one seed are refused (or, with
``allow_mixed``, aggregated under a loud warning)."""

from __future__ import annotations

import json

import pytest
import yaml

from voxface.errors import VoxfaceError
from voxface.reports.aggregate import aggregate_runs, write_aggregate


def _run(folder, seed, corpus="corpora/a", method="CMP-supervised", are=0.07, run=None):
    folder.mkdir(parents=True)
    methods = {method: {"ARE": {"mean": are + 0.001 * seed}}, "mean-face oracle": {"ARE": {"mean": 0.0746}}}
    (folder / "metrics.json").write_text(json.dumps({"run": str(run or folder), "corpus": corpus, "method": method,
                                                     "n_test_identities": 20, "methods": methods}))
    (folder / "config.yaml").write_text(yaml.safe_dump({"kind": "supervised", "seed": seed, "corpus": corpus}))
    return folder


def test_seeds_of_one_experiment_are_aggregated(tmp_path):
    runs = [_run(tmp_path / f"s{k}", k) for k in range(3)]
    assert len(aggregate_runs(runs)["runs"]) == 3


@pytest.mark.parametrize("change, said", [
    (dict(corpus="corpora/b"), "corpus"),
    (dict(method="CMP-supervised (Resemblyzer)"), "method"),
])
def test_runs_of_different_experiments_are_refused(tmp_path, change, said):
    runs = [_run(tmp_path / "s0", 0), _run(tmp_path / "s1", 1, **change)]
    with pytest.raises(VoxfaceError, match=rf"not seeds of one experiment: {said} differs"):
        aggregate_runs(runs)


def test_the_same_run_twice_or_one_seed_twice_is_refused(tmp_path):
    a = _run(tmp_path / "s0", 0)
    with pytest.raises(VoxfaceError, match="given twice"):
        aggregate_runs([a, tmp_path / "s0" / "metrics.json"])
    copy = _run(tmp_path / "copy", 1, run=a)
    with pytest.raises(VoxfaceError, match="same run"):
        aggregate_runs([a, copy])
    again = _run(tmp_path / "again", 0)
    with pytest.raises(VoxfaceError, match="seed 0 twice"):
        aggregate_runs([a, again])


def test_allow_mixed_aggregates_under_a_loud_warning(tmp_path):
    runs = [_run(tmp_path / "s0", 0), _run(tmp_path / "s1", 1, corpus="corpora/b")]
    summary = aggregate_runs(runs, allow_mixed=True)
    assert "corpus differs" in summary["warning"]
    text = write_aggregate(summary, tmp_path / "agg").read_text()
    assert text.startswith("**Warning: these runs are not seeds of one experiment")

"""Report statistics (evaluate/statistics.py) against closed forms and independent computations."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from voxface.evaluate.statistics import (
    aggregate_seeds,
    bootstrap_gain,
    bootstrap_mean,
    compare_seeds,
    metric_statistics,
    paired_comparison,
    per_identity_ratio,
    sign_flip_test,
)


def test_bootstrap_interval_of_a_mean_matches_the_normal_interval_for_many_identities():
    values = np.random.default_rng(0).normal(0.05, 0.01, 400)
    interval = bootstrap_mean(values)
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values))
    assert interval.estimate == pytest.approx(values.mean())
    assert interval.low == pytest.approx(values.mean() - half, rel=0.02)
    assert interval.high == pytest.approx(values.mean() + half, rel=0.02)


def test_bootstrap_intervals_cover_the_truth_at_about_their_level():
    rng = np.random.default_rng(1)
    covered = 0
    for k in range(200):
        x = rng.normal(1.0, 1.0, 40)
        interval = bootstrap_mean(x, resamples=2000, seed=k)
        covered += interval.low <= 1.0 <= interval.high
    assert 0.89 <= covered / 200 <= 0.99


def test_gain_interval_is_the_paired_ratio_of_means():
    rng = np.random.default_rng(2)
    baseline = rng.uniform(0.05, 0.08, 50)
    method = baseline * 0.8 + rng.normal(0, 0.002, 50)
    interval = bootstrap_gain(method, baseline)
    assert interval.estimate == pytest.approx(method.mean() / baseline.mean() - 1)
    assert interval.low < interval.estimate < interval.high < 0
    # identities are resampled jointly: breaking the pairing gives the same estimate, a wider interval
    shuffled = bootstrap_gain(rng.permutation(method), baseline)
    assert shuffled.estimate == pytest.approx(interval.estimate)
    assert shuffled.high - shuffled.low > 3 * (interval.high - interval.low)


def test_sign_flip_p_value_equals_full_enumeration_for_small_n():
    rng = np.random.default_rng(3)
    a, b = rng.normal(1.0, 1.0, 10), rng.normal(0.3, 1.0, 10)
    d = a - b
    observed = abs(d.mean())
    flips = np.array(list(itertools.product([1, -1], repeat=len(d))))
    enumerated = np.mean(np.abs((flips * d).mean(1)) >= observed - 1e-12)
    assert sign_flip_test(a, b) == pytest.approx(enumerated)
    assert sign_flip_test(a, a) == 1.0


def test_sign_flip_test_rejects_a_real_difference_and_not_a_null_one():
    rng = np.random.default_rng(4)
    base = rng.uniform(0.04, 0.08, 60)
    assert sign_flip_test(base - 0.01 + rng.normal(0, 0.002, 60), base) < 0.001
    null_p = [sign_flip_test(base + rng.normal(0, 0.01, 60), base, resamples=1000, seed=k) for k in range(100)]
    assert 0.01 <= np.mean(np.array(null_p) < 0.05) <= 0.12


def test_paired_comparison_says_whether_significant():
    base = np.linspace(0.05, 0.07, 30)
    result = paired_comparison(base * 0.8, base)
    assert result["significant"] and result["p_value"] < 0.05 and result["gain"]["estimate"] == pytest.approx(-0.2)
    assert not paired_comparison(base + np.tile([1e-4, -1e-4], 15), base)["significant"]


def test_per_identity_ratio_pools_each_identitys_counts():
    labels = np.array(["b", "a", "b", "a", "c"])
    won = np.array([1.0, 2.0, 0.5, 1.0, 0.0])
    trials = np.array([2, 3, 1, 3, 0])
    ratio = per_identity_ratio(won, trials, labels, ["a", "b", "c", "d"])
    np.testing.assert_allclose(ratio[:2], [3 / 6, 1.5 / 3])
    assert np.isnan(ratio[2]) and np.isnan(ratio[3])  # no trial / no query: no value


def test_metric_statistics_against_chance_is_the_one_sample_sign_flip_test():
    values = np.array([0.62, 0.55, 0.71, 0.48, 0.66, 0.59, np.nan, 0.69])
    found = metric_statistics(values, {"chance": 0.5})
    kept = values[np.isfinite(values)]
    d = kept - 0.5
    flips = np.array(list(itertools.product([1, -1], repeat=len(d))))
    enumerated = np.mean(np.abs((flips * d).mean(1)) >= abs(d.mean()) - 1e-12)
    assert found["identities"] == 7 and found["mean"]["estimate"] == pytest.approx(kept.mean())
    assert found["vs"]["chance"]["p_value"] == pytest.approx(enumerated)
    assert found["vs"]["chance"]["gain"]["estimate"] == pytest.approx(kept.mean() / 0.5 - 1)
    # a per-identity baseline is paired identity by identity, its missing identities left out too
    other = np.array([0.1, np.nan, 0.2, 0.1, 0.15, 0.1, 0.3, 0.2])
    paired = metric_statistics(values, {"others": other})
    keep = np.isfinite(values) & np.isfinite(other)
    assert paired["identities"] == 6
    assert paired["vs"]["others"]["p_value"] == pytest.approx(sign_flip_test(values[keep], other[keep]))
    assert metric_statistics(np.array([0.5, np.nan]), {"chance": 0.5}) is None


def test_seed_aggregates_match_the_t_interval_and_the_paired_t_test():
    a = np.array([0.0672, 0.0675, 0.0662, 0.0668, 0.0681])
    b = np.array([0.0687, 0.0655, 0.0687, 0.0690, 0.0679])
    agg = aggregate_seeds(a)
    half = stats.t.ppf(0.975, 4) * a.std(ddof=1) / np.sqrt(5)
    assert agg["mean"] == pytest.approx(a.mean()) and agg["sd"] == pytest.approx(a.std(ddof=1))
    assert agg["ci"]["low"] == pytest.approx(a.mean() - half) and agg["ci"]["high"] == pytest.approx(a.mean() + half)
    result = compare_seeds(a, b)
    assert result["paired_t_p"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert result["sign_flip_p"] == pytest.approx(np.mean([abs(np.mean(np.array(s) * (a - b))) >= abs(np.mean(a - b)) - 1e-15
                                                          for s in itertools.product([1, -1], repeat=5)]))


def test_too_few_or_non_finite_values_are_refused():
    with pytest.raises(ValueError, match="at least 2 finite"):
        bootstrap_mean(np.array([1.0]))
    with pytest.raises(ValueError, match="at least 2 finite"):
        aggregate_seeds(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="differ in length"):
        sign_flip_test(np.ones(3), np.ones(4))


def test_aggregate_command_reads_runs_and_compares_methods_paired_by_seed(tmp_path, capsys):
    import json

    from voxface.cli import main
    from voxface.reports.aggregate import aggregate_runs

    cmp = [0.0672, 0.0675, 0.0662, 0.0668, 0.0681]
    base2 = [0.0687, 0.0655, 0.0687, 0.0690, 0.0679]
    rng = np.random.default_rng(5)
    per_identity = {}
    for seed, (a, b) in enumerate(zip(cmp, base2)):
        methods = {"CMP-unsupervised": a, "Base-2": b, "mean-face oracle": 0.0746, "gender oracle": 0.0622}
        per_identity[seed] = {k: (v + rng.normal(0, 0.01, 8)).tolist() for k, v in methods.items()}
        table = {k: {"ARE": {"mean": v, "per_identity": per_identity[seed][k]}} for k, v in methods.items()}
        del table["gender oracle"]["ARE"]["per_identity"]  # a run without per-identity values: no identity test
        folder = tmp_path / f"seed{seed}" / "cmp" / "evaluation"
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps({"methods": table}))
    runs = [str(tmp_path / f"seed{s}") for s in range(5)]
    assert main(["aggregate", *runs, "--out", str(tmp_path / "agg"), "--compare", "CMP-unsupervised", "Base-2"]) == 0
    summary = json.loads((tmp_path / "agg" / "aggregate.json").read_text())
    assert summary["methods"]["CMP-unsupervised"]["mean"] == pytest.approx(np.mean(cmp))
    [comparison] = summary["comparisons"]
    assert comparison["paired_t_p"] == pytest.approx(stats.ttest_rel(cmp, base2).pvalue)
    assert comparison["difference"]["mean"] == pytest.approx(np.mean(np.subtract(cmp, base2)))
    seed_mean = {k: np.mean([per_identity[s][k] for s in range(5)], axis=0) for k in ("CMP-unsupervised", "Base-2")}
    expected = paired_comparison(seed_mean["CMP-unsupervised"], seed_mean["Base-2"])
    assert comparison["over_identities"]["p_value"] == pytest.approx(expected["p_value"])
    assert comparison["over_identities"]["gain"]["estimate"] == pytest.approx(expected["gain"]["estimate"])
    default = aggregate_runs(runs)
    assert {c["baseline"]: c["over_identities"] is None for c in default["comparisons"]
            if c["method"] == "CMP-unsupervised"} == {"Base-2": False, "mean-face oracle": False, "gender oracle": True}
    assert "| CMP-unsupervised | Base-2 |" in capsys.readouterr().out
    assert main(["aggregate", runs[0], "--out", str(tmp_path / "one")]) == 2
    assert main(["aggregate", *runs, "--out", str(tmp_path / "x"), "--compare", "CMP-unsupervised", "Base-9"]) == 2

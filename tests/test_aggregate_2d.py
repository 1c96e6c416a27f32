"""``voxface aggregate`` of gan2d runs evaluated by ``evaluate-2d``: per generator over seeds, and
generators compared seed by seed; checked against numpy / scipy computed here."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from scipy import stats

from voxface.errors import VoxfaceError
from voxface.reports.aggregate import aggregate_runs, write_aggregate


def _run(folder, generator, seed, r1, psnr, corpus="data/synth9"):
    folder.mkdir(parents=True)
    metrics = {"generator": generator, "run": str(folder), "corpus": corpus, "speaker_run": "runs/speaker",
               "test_identities": 9, "tau": 0.39, "face_embedder": "dlib", "identity_accuracy": r1 / 2,
               "real_identity_accuracy": 0.817, "matching_1v2": 0.9, "generated_face_detection_rate": 1.0,
               "recall_at": {"1": r1, "5": 1.0}, "image_quality": {"PSNR": psnr, "SSIM": 0.7}}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "config.yaml").write_text(yaml.safe_dump({"kind": "gan2d", "seed": seed, "generator": generator}))
    return folder


def test_each_generator_is_aggregated_over_its_seeds_and_compared_seed_by_seed(tmp_path):
    vae_r1, gan_r1 = np.array([0.7, 0.8, 0.75]), np.array([0.6, 0.65, 0.8])
    runs = [_run(tmp_path / f"vae{k}", "vae", k, vae_r1[k], 26.0 + k) for k in range(3)]
    runs += [_run(tmp_path / f"rcgan{k}", "rcgan", k, gan_r1[k], 23.0) for k in range(3)]
    summary = aggregate_runs(runs)
    r1 = summary["generators"]["vae"]["R@1"]
    half = stats.t.ppf(0.975, 2) * vae_r1.std(ddof=1) / np.sqrt(3)
    assert r1["mean"] == pytest.approx(vae_r1.mean()) and r1["ci"]["high"] == pytest.approx(vae_r1.mean() + half)
    assert summary["generators"]["vae"]["PSNR"]["mean"] == pytest.approx(27.0)
    paired = next(c for c in summary["comparisons"] if c["score"] == "R@1")
    assert (paired["method"], paired["baseline"], paired["seeds"]) == ("vae", "rcgan", [0, 1, 2])
    assert paired["difference"]["mean"] == pytest.approx((vae_r1 - gan_r1).mean())
    assert paired["paired_t_p"] == pytest.approx(stats.ttest_rel(vae_r1, gan_r1).pvalue)
    text = write_aggregate(summary, tmp_path / "agg").read_text()
    assert "| vae | 3 | " in text and "| vae | rcgan | R@1 | +6.67 |" in text
    assert json.loads((tmp_path / "agg" / "aggregate.json").read_text())["metric"] == "voice-to-image scores"


def test_runs_of_other_experiments_or_lone_seeds_are_refused(tmp_path):
    a, b = _run(tmp_path / "a", "vae", 0, 0.7, 26), _run(tmp_path / "b", "vae", 1, 0.7, 26, corpus="data/other")
    with pytest.raises(VoxfaceError, match="corpus differs"):
        aggregate_runs([a, b])
    c = _run(tmp_path / "c", "vae", 0, 0.7, 26)
    with pytest.raises(VoxfaceError, match="vae seed 0 twice"):
        aggregate_runs([a, c])
    d, e = _run(tmp_path / "d", "vae", 1, 0.7, 26), _run(tmp_path / "e", "cgan", 0, 0.1, 12)
    with pytest.raises(VoxfaceError, match=r"\['cgan'\] have fewer than 2"):
        aggregate_runs([a, d, e])


def test_a_damaged_evaluation_is_refused_naming_its_file(tmp_path):
    a, b = _run(tmp_path / "a", "vae", 0, 0.7, 26), _run(tmp_path / "b", "vae", 1, 0.7, 26)
    metrics = json.loads((b / "metrics.json").read_text())
    del metrics["recall_at"]["1"]
    (b / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(VoxfaceError, match=r"b/metrics.json lacks a score of evaluate-2d"):
        aggregate_runs([a, b])
    metrics["recall_at"]["1"], metrics["image_quality"]["PSNR"] = 0.7, None
    (b / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(VoxfaceError, match=r"b/metrics.json lacks a score"):
        aggregate_runs([a, b])

"""``voxface evaluate``: score a voice-to-3D run and the oracles on the test identities (A–E).

Tables as in the CMP paper: Table 1 (ARE per ratio, mean, gain), S-2 (NME), S-3/S-4 (point-to-plane
RMSE after ICP, holistic and per region), S-6 (oracles), and the coherence across utterances of
Fig. 10. Every method is scored by the same code on the same identities.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..corpus.data import utterance_set
from ..corpus.format import Corpus
from ..corpus.validate import check_corpus
from ..errors import VoxfaceError
from ..evaluate.geometry import (
    NORMALISER,
    absolute_ratio_error,
    coherence,
    gain,
    measurement_distances,
    nme,
    within_between_distances,
)
from ..evaluate.headroom import corpus_identity_set
from ..evaluate.icp import point_to_plane_rmse
from ..evaluate.listener import perfect_listener
from ..evaluate.in_distribution import in_distribution_report
from ..evaluate.oracles import gender_oracle, mean_face_oracle, voice_parameter_ceiling
from ..evaluate.statistics import CONFIDENCE, method_statistics
from ..evaluate.uncertainty import CoefficientDistribution, calibration_report
from ..face3d import MorphableModel
from ..predictors.voice_to_3d import FEATURES, VoiceTo3D
from ..runs import atomic
from ..runs.config import check_number
from ..runs.folder import check_scores_corpus, run_corpus, write_evaluation
from ..runs.placement import place_predictor

log = logging.getLogger(__name__)

UTTERANCES_PER_IDENTITY = 3  # as in the paper's evaluation
MEAN_FACE = "mean-face oracle"
GENDER = "gender oracle"
CEILING = "voice ceiling"
ORACLES = [MEAN_FACE, GENDER]
"""What every method is tested against in the statistics (callers may add baselines)."""
METHOD_NAMES = {"cmp": "CMP-supervised", "resemblyzer": "CMP-supervised (Resemblyzer)"}


@dataclass
class TestPredictions:
    """A predictor's outputs for the test utterances (U per identity, identities in corpus order).

    Attributes:
        meshes: (N, U, V, 3).
        scores: (N·U,) in-distribution scores, or None without a voice reference.
        distribution: the (N·U, K) predictive distribution, or None for a point regressor.
    """

    meshes: np.ndarray
    scores: np.ndarray | None
    distribution: CoefficientDistribution | None


def predict_test_meshes(predictor: VoiceTo3D, corpus: Corpus, test_ids: list[str], per_identity: int,
                        progress: bool = True) -> TestPredictions:
    """The predictor on each test identity's first U utterances (identities need >= U)."""
    data = utterance_set(corpus, test_ids, FEATURES[predictor.backbone], per_identity=per_identity, progress=progress)
    counts = np.bincount(data.identity_index, minlength=len(test_ids))
    if counts.min() < per_identity:
        short = [test_ids[i] for i in np.flatnonzero(counts < per_identity)][:5]
        raise VoxfaceError(f"corpus {corpus.root}: test identities with fewer than {per_identity} utterances "
                           f"({short}); evaluate with a smaller --utterances")
    embeddings = predictor.embed(data.features)
    meshes = predictor.meshes(embeddings).reshape(len(test_ids), per_identity, -1, 3)
    return TestPredictions(meshes, predictor.in_distribution(data.features),
                           predictor.distribution(embeddings))


def oracle_predictions(corpus: Corpus, test_ids: list[str]) -> dict[str, np.ndarray]:
    """Name -> (N, 1, V, 3) meshes of the mean-face and gender oracles, and the voice ceiling
    for synthetic corpora."""
    model = corpus.model
    train = corpus_identity_set(corpus, "train") if corpus.synthetic else None
    train_ids = corpus.identity_ids("train")
    train_shapes = corpus.reference_shapes(train_ids)
    gender = {i.identity: i.gender for i in corpus.identities}
    shapes = {
        MEAN_FACE: mean_face_oracle(train_shapes, len(test_ids)),
        GENDER: gender_oracle(train_shapes, [gender[i] for i in train_ids], [gender[i] for i in test_ids]),
    }
    if train is not None:
        test = corpus_identity_set(corpus, "test")
        shapes[CEILING] = voice_parameter_ceiling(train.voice, train.shapes, test.voice)
    return {name: model.reconstruct(s)[:, None] for name, s in shapes.items()}


def score(model: MorphableModel, predictions: np.ndarray, references: np.ndarray) -> dict:
    """All metrics of (N, U, V, 3) predictions against (N, V, 3) references (model units for RMSE);
    ``ARE.per_identity`` is each identity's mean ARE over the four ratios (for the statistics)."""
    result = absolute_ratio_error(predictions, references, model.measurements)
    are = {**result.as_dict(), "per_identity": result.per_identity.mean(axis=1).tolist()}
    n, u = predictions.shape[:2]
    flat_pred = predictions.reshape(n * u, -1, 3)
    flat_ref = np.repeat(references, u, axis=0)
    oicd = model.measurements[NORMALISER]
    result = {"ARE": are,
              "NME": {c: float(np.mean(nme(flat_pred, flat_ref, model.landmarks68, oicd, convention=c)))
                      for c in ("cmp", "per_point")}}
    pair = {NORMALISER: oicd}
    scales = measurement_distances(flat_ref, pair)[NORMALISER] / measurement_distances(flat_pred, pair)[NORMALISER]
    rmse = [point_to_plane_rmse(p, r, model.triangles, model.regions, scale=float(s))
            for p, r, s in zip(flat_pred, flat_ref, scales)]
    result["RMSE"] = {k: float(np.mean([r[k] for r in rmse])) for k in rmse[0]}
    return result


def evaluate_run(run_dir: str | Path, corpus_dir: str | None = None, per_identity: int = UTTERANCES_PER_IDENTITY,
                 progress: bool = True, method_name: str | None = None,
                 extra_methods: dict[str, np.ndarray] | None = None, baselines: tuple[str, ...] = (),
                 device: str = "auto") -> dict:
    """Score the run's predictor and the oracles; write ``metrics.json`` into the run folder.

    ``extra_methods``: name -> (N, U, V, 3) predictions of other methods for the test identities in
    corpus order (e.g. the unsupervised method and cascade baselines), scored beside the others.
    ``baselines``: names among them that every method is also tested against (besides the oracles).
    ``device``: where the predictor's networks compute (:mod:`voxface.runs.devices`).
    """
    per_identity = check_number("--utterances (utterances per test identity)", per_identity, int, ge=1)
    run = Path(run_dir)
    atomic.remove_stale_temporaries(run, recursive=False)  # a killed evaluation's half report
    start = time.perf_counter()
    predictor = place_predictor(VoiceTo3D.load(run), device)
    method_name = method_name or METHOD_NAMES[predictor.backbone]
    corpus = check_corpus(run_corpus(run, corpus_dir))
    check_scores_corpus(run, corpus.root)
    predictor.check_model(corpus.model)
    model = corpus.model
    test_ids = corpus.identity_ids("test")
    references = model.reconstruct(corpus.reference_shapes(test_ids))
    predicted = predict_test_meshes(predictor, corpus, test_ids, per_identity, progress)
    ours, scores = predicted.meshes, predicted.scores
    methods = {method_name: ours}
    methods.update(extra_methods or {})
    methods.update(oracle_predictions(corpus, test_ids))
    results = {name: score(model, preds, references) for name, preds in methods.items()}
    for name, r in results.items():
        r["gain_vs_mean_face"] = gain(r["ARE"]["mean"], results[MEAN_FACE]["ARE"]["mean"])
        r["gain_vs_gender_oracle"] = gain(r["ARE"]["mean"], results[GENDER]["ARE"]["mean"])
    statistics = method_statistics({name: np.asarray(r["ARE"]["per_identity"]) for name, r in results.items()},
                                   ORACLES + list(baselines))
    within, between = within_between_distances(ours)
    per_identity_coherence = np.array([coherence(p) for p in ours])
    metrics = {
        "run": str(run), "corpus": str(corpus.root), "synthetic": corpus.synthetic,
        "link_strength": corpus.manifest.get("link_strength"),
        "morphable_model": corpus.manifest["morphable_model"], "n_test_identities": len(test_ids),
        "utterances_per_identity": per_identity, "method": method_name, "methods": results,
        "statistics": {"metric": "mean ARE per identity", "confidence": CONFIDENCE, "methods": statistics},
        "coherence": {"mean": float(per_identity_coherence[:, 0].mean()),
                      "std": float(per_identity_coherence[:, 1].mean()),
                      "within_speaker_distance": within, "between_speaker_distance": between},
        "units": model.units, "seconds": round(time.perf_counter() - start, 2),
        "in_distribution": None if scores is None else {**in_distribution_report(scores),
                                                        "reference": predictor.reference.source},
    }
    if predicted.distribution is not None:
        metrics["uncertainty"] = uncertainty_metrics(corpus, test_ids, per_identity, predicted.distribution)
    if CEILING in results:
        gap = results[MEAN_FACE]["ARE"]["mean"] - results[CEILING]["ARE"]["mean"]
        closed = results[MEAN_FACE]["ARE"]["mean"] - results[method_name]["ARE"]["mean"]
        metrics["share_of_ceiling_gap_recovered"] = float(closed / gap) if gap > 0 else None
    from .report import write_report

    write_report(run, metrics, model, test_ids, references, methods, corpus)
    write_evaluation(run, metrics)  # last: metrics.json says the evaluation is complete
    return metrics


def uncertainty_metrics(corpus: Corpus, test_ids: list[str], per_identity: int,
                        distribution: CoefficientDistribution) -> dict:
    """The predictive distribution against the truth (``evaluate.uncertainty.calibration_report``),
    with a perfect listener's floor and explained variances on synthetic corpora."""
    gender = {i.identity: i.gender for i in corpus.identities}
    train_ids = corpus.identity_ids("train")
    truth = np.repeat(corpus.reference_shapes(test_ids), per_identity, axis=0)
    listener = None
    if corpus.synthetic:
        generator = corpus.manifest.get("generator", {})
        listener = perfect_listener(corpus.model, corpus.manifest["link_strength"], seed=generator.get("seed", 0))
    report = calibration_report(corpus.model, distribution, truth.astype(np.float64),
                                corpus.reference_shapes(train_ids), np.array([gender[i] for i in train_ids]),
                                np.repeat([gender[i] for i in test_ids], per_identity),
                                floor_variance=None if listener is None else listener.floor_variance)
    if listener is not None:
        report["perfect_listener"] = listener.as_dict()
    return report


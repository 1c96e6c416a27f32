"""How sure, as speech accumulates: a Gaussian head's spread, its error and its calibration with the
first 1, 2, 4 and 8 s of each test voice's speech.

Usage: .venv/bin/python bench/check_uncertainty_length.py RUN CORPUS [--lengths 1 2 4 8] [--per-identity 4]

RUN is a voice-to-3D run with an uncertainty head (``--set uncertainty=gaussian``, e.g.
configs/supervised_uncertainty.yaml); CORPUS a synthetic corpus (its test identities know their
true faces). For each length L, every test utterance's speech (after silence removal, as
``voxface predict`` reads it) is cut to its first L seconds — exactly what the live page has
heard after L seconds of speech; utterances with less speech are left out of that row — and the
table gives, against the true standardised shape coefficients:

- spread: the RMS over coefficients of the predicted standard deviation (z-scores of the prior);
- RMSE: the RMS error of the predicted mean (z);
- coverage of the central 50% and 90% intervals of the coefficients (a calibrated head: 50 / 90);

each for the head's own spread and, when the run holds one, for the spread scaled by its length
calibration (fitted on the run's validation voices, :mod:`voxface.evaluate.length_calibration`):
what ``voxface predict`` and the live page show.

A head whose spread does not grow as L shrinks while its RMSE does is over-confident on short
speech; docs/serve.md states what the page shows about it.
"""

from __future__ import annotations

import argparse

import numpy as np

from voxface.corpus.format import Corpus
from voxface.evaluate.uncertainty import CoefficientDistribution, coverage
from voxface.predictors.voice_to_3d import VoiceTo3D
from voxface.workflows.predict import read_voice

SR = 16000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("corpus")
    parser.add_argument("--lengths", type=float, nargs="+", default=[1.0, 2.0, 4.0, 8.0])
    parser.add_argument("--per-identity", type=int, default=4, help="test utterances per identity")
    args = parser.parse_args()
    predictor = VoiceTo3D.load(args.run)
    if not predictor.probabilistic:
        raise SystemExit(f"{args.run} has no uncertainty head: train one with --set uncertainty=gaussian")
    corpus = Corpus(args.corpus)
    test = corpus.identity_ids("test")
    truth_of = dict(zip(test, corpus.reference_shapes(test)))
    counts: dict[str, int] = {}
    voices = []
    for u in corpus.utterances:
        if u.identity in truth_of and counts.get(u.identity, 0) < args.per_identity:
            counts[u.identity] = counts.get(u.identity, 0) + 1
            voices.append((read_voice(corpus.path(u.audio)), truth_of[u.identity]))
    print(f"{args.run} on {len(voices)} test utterances of {len(counts)} identities ({args.corpus})")
    calibration = predictor.length_calibration
    if calibration is not None:
        print("length calibration (validation voices): " + ", ".join(
            f"{s:g} s x{k:.3f} (held out x{h:.3f}, {n} crops)" for s, k, h, n in
            zip(calibration.seconds, calibration.scale, calibration.held_out, calibration.voices)))
    print("| speech (s) | utterances | RMSE (z) | spread (z) | coverage 50% | coverage 90% "
          "| calibrated spread (z) | coverage 50% | coverage 90% |")
    print("|---|---|---|---|---|---|---|---|---|")
    for seconds in args.lengths:
        rows = [table_row(predictor, voices, seconds, calibrated) for calibrated in (False, True)]
        if rows[0] is None:
            print(f"| {seconds:g} | 0 |" + " - |" * 7)
            continue
        n, rmse = rows[0][:2]
        cells = [f"{r[2]:.3f} | {100 * r[3]:.0f}% | {100 * r[4]:.0f}%" if calibration is not None or not calibrated
                 else "- | - | -" for calibrated, r in enumerate(rows)]
        print(f"| {seconds:g} | {n} | {rmse:.3f} | {cells[0]} | {cells[1]} |", flush=True)


def table_row(predictor: VoiceTo3D, voices: list[tuple[np.ndarray, np.ndarray]], seconds: float, calibrated: bool):
    """(utterances, RMSE, spread, coverage 50%, coverage 90%) of the first ``seconds`` of speech of
    each voice long enough (with the run's length calibration or the head's own spread), or None
    when none is."""
    kept = [(speech[:int(seconds * SR)], truth) for speech, truth in voices if len(speech) >= seconds * SR]
    if not kept:
        return None
    embeddings = predictor.embed(predictor.voice_features([speech for speech, _ in kept]))
    heard = np.array([len(speech) / SR for speech, _ in kept]) if calibrated else None
    distribution: CoefficientDistribution = predictor.distribution(embeddings, heard)
    k = distribution.mean.shape[-1]  # the head's K shape coefficients (the corpus may know more)
    truth = np.stack([t[:k] for _, t in kept])
    spread = float(np.sqrt(distribution.marginal_variance.mean()))
    rmse = float(np.sqrt(((distribution.mean - truth) ** 2).mean()))
    return len(kept), rmse, spread, coverage(truth, distribution, 0.5), coverage(truth, distribution, 0.9)


if __name__ == "__main__":
    main()

"""``voxface evaluate-2d``: score voice -> 2D face runs (paper Tables I and II, Fig. 10; 1:2 matching, recall@k).

For each test voice patch (at most ``per_identity`` per identity, spread over its test utterances)
a gan2d run's generator makes a 64×64 face; an imported Wen et al. (2019) model (``voxface import
wen-release``) makes one from each of the first ``per_identity`` test utterances of every identity
(CMP log-mel, their encoder and generator). Then:

- Table II: MAE, MSE, SNR, PSNR, PAMSE, SSIM of the generated face against the identity's target
  face (the real image the generator was trained to produce; images in [0, 1], see
  ``evaluate.image_metrics``); not for imported models, which had no target here;
- Table I: dlib face embeddings of generated and real faces; the share of (generated, real face of
  the voice's identity) pairs closer than τ. τ comes from ``--tau``, a ``calibrate-faces`` result,
  or is grid-searched on the test identities' real faces (the paper calibrates on its own faces);
- 1:2 matching (unstratified and gender-stratified) and recall@1/5/10 of the true identity among
  the test identities, by the mean embedding distance to each identity's real faces.

Writes ``metrics.json`` and ``report/`` (report.md, the qualitative grid, t-SNE of face embeddings)
into each run; with several runs, ``comparison.md`` / ``comparison.json`` into ``--out``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ..corpus.data import photos, target_faces, utterance_set  # noqa: E402
from ..corpus.format import Corpus  # noqa: E402
from ..corpus.validate import check_corpus  # noqa: E402
from ..errors import VoxfaceError  # noqa: E402
from ..evaluate.image_metrics import METRICS, image_quality_per_image  # noqa: E402
from ..evaluate.statistics import gain_texts, metric_statistics, per_identity_ratio  # noqa: E402
from ..evaluate.verification import (  # noqa: E402
    calibrate_threshold,
    distances_to_identities,
    identity_accuracy,
    identity_hits,
    matching_1v2,
    matching_1v2_per_query,
    pair_distances,
    recall_at_k,
    same_identity_rate,
    true_identity_rank,
)
from ..predictors.bundle import read_network  # noqa: E402
from ..methods.speaker_cnn import load_voice_embeddings  # noqa: E402
from ..predictors.voice_to_image import GENERATOR, VoiceToImage  # noqa: E402
from ..runs import atomic  # noqa: E402
from ..runs.folder import check_scores_corpus, read_run_config, write_evaluation  # noqa: E402
from ..runs.placement import place_network, place_predictor  # noqa: E402
from ..runs.reading import read_json  # noqa: E402
from ..vision.face_embedding import create_face_embedder  # noqa: E402
from .figures import plot_threshold_sweep, plot_tsne  # noqa: E402

log = logging.getLogger(__name__)

RUN_KINDS = ("gan2d", "wen-release")


def test_patches(roles: np.ndarray, identity: np.ndarray, utterance: np.ndarray, per_identity: int) -> np.ndarray:
    """Indices of at most ``per_identity`` test patches per identity, taken round-robin over its utterances."""
    chosen = []
    for ident in sorted(set(identity[roles == "test"])):
        rows = np.flatnonzero((roles == "test") & (identity == ident))
        by_utt = [rows[utterance[rows] == u] for u in np.unique(utterance[rows])]
        order = [r[k] for k in range(max(map(len, by_utt))) for r in by_utt if k < len(r)]
        chosen.extend(order[:per_identity])
    return np.array(chosen, dtype=int)


@torch.no_grad()
def generate_faces(generator, voices: np.ndarray, batch: int = 256) -> np.ndarray:
    """(N, 128) voice embeddings -> (N, 64, 64, 3) float32 faces in [0, 1]."""
    out = [generator.generate(torch.from_numpy(voices[i:i + batch].astype(np.float32)))
           for i in range(0, len(voices), batch)]
    return torch.cat(out).permute(0, 2, 3, 1).numpy()


@dataclass
class Queries:
    """The faces one run generated for the test voices: ``identity`` (N,) of each voice, ``faces``
    (N, 64, 64, 3) float32 in [0, 1], ``targets`` (N, 64, 64, 3) — the real face each was trained to
    produce — or None for a model trained elsewhere (an imported release), and the seconds it took."""

    identity: np.ndarray
    faces: np.ndarray
    targets: np.ndarray | None
    seconds: float


def gan2d_queries(run: str | Path, config: dict, corpus: Corpus, per_identity: int, device: str = "auto") -> Queries:
    """A gan2d run's faces from the speaker run's test voice patches (``per_identity`` per identity),
    generated on ``device``."""
    voices = load_voice_embeddings(config["speaker_run"])
    picked = test_patches(voices["role"], voices["identity"], voices["utterance"], per_identity)
    if not len(picked):
        raise VoxfaceError(f"speaker run {config['speaker_run']} has no test voices")
    start = time.perf_counter()
    generated = generate_faces(place_network(read_network(run, GENERATOR), device), voices["embedding"][picked])
    seconds = time.perf_counter() - start
    targets = target_faces(corpus, config["seed"])
    identity = voices["identity"][picked]
    return Queries(identity, generated, face_images(corpus, [corpus.faces[targets[i]] for i in identity]),
                   seconds)


def imported_queries(run: str | Path, corpus: Corpus, per_identity: int, progress: bool,
                     device: str = "auto") -> Queries:
    """An imported voice-to-image model's faces from the corpus's test utterances (CMP log-mel),
    computed on ``device``."""
    model = place_predictor(VoiceToImage.load(run), device)
    test_ids = corpus.identity_ids("test")
    data = utterance_set(corpus, test_ids, "cmp_logmel", per_identity=per_identity, progress=progress)
    if not data.features:
        raise VoxfaceError(f"corpus {corpus.root} has no test utterances")
    start = time.perf_counter()
    with torch.no_grad():
        embeddings = torch.cat([model.encoder(torch.from_numpy(f.T[None].copy())) for f in data.features])
    faces = model.images_from_embeddings(embeddings)
    return Queries(np.array([test_ids[i] for i in data.identity_index]), faces, None, time.perf_counter() - start)


def face_images(corpus: Corpus, faces: list) -> np.ndarray:
    """(N, 64, 64, 3) float32 in [0, 1] of the faces' 64×64 crops (the generators' range)."""
    return photos(corpus, faces).astype(np.float32) / 255.0


def evaluate_2d(runs: list[str | Path], out: str | Path | None = None, tau: float | None = None,
                calibration: str | Path | None = None, per_identity: int = 20, corpus_dir: str | None = None,
                progress: bool = True, device: str = "auto") -> dict:
    """Evaluate gan2d runs (one corpus and speaker run) and imported voice-to-image runs (Wen et al.) on
    the same test identities, their generators on ``device``; return {"runs": {name: metrics}, ...}."""
    if not runs:
        raise VoxfaceError("give at least one run folder of `voxface train gan2d` or `voxface import wen-release`")
    configs = [read_run_config(r) for r in runs]
    for r, c in zip(runs, configs):
        if c.get("kind") not in RUN_KINDS:
            raise VoxfaceError(f"{r} is a {c.get('kind')!r} run, not one of {RUN_KINDS} (voxface train gan2d, "
                               "voxface import wen-release)")
    trained = [c for c in configs if c["kind"] == "gan2d"]
    if len({(c["corpus"], c["speaker_run"]) for c in trained}) > 1:
        raise VoxfaceError("evaluate-2d compares runs on one corpus and speaker run; these differ: "
                           + ", ".join(f"{r}: {c['corpus']} / {c['speaker_run']}" for r, c in zip(runs, configs)
                                       if c["kind"] == "gan2d"))
    corpus_dir = corpus_dir or (trained[0]["corpus"] if trained else None)
    if corpus_dir is None:
        raise VoxfaceError("imported runs were not trained on a corpus here; pass --corpus CORPUS")
    corpus = check_corpus(corpus_dir)
    for run in runs:
        check_scores_corpus(run, corpus_dir)
    queries = {run: (gan2d_queries(run, c, corpus, per_identity, device) if c["kind"] == "gan2d"
                     else imported_queries(run, corpus, per_identity, progress, device))
               for run, c in zip(runs, configs)}
    identities = sorted(set(np.concatenate([q.identity for q in queries.values()])))
    genders = {i.identity: i.gender for i in corpus.identities}

    real_faces = [f for f in corpus.faces if f.identity in identities]
    real_images = face_images(corpus, real_faces)
    real_labels = np.array([f.identity for f in real_faces])
    embedder = create_face_embedder("dlib")
    real_emb, real_found = embedder.embed(real_images, progress=progress)
    shared = {"corpus": str(corpus_dir), "speaker_run": trained[0]["speaker_run"] if trained else None,
              "test_identities": len(identities),
              "generated_faces": {str(r): len(q.identity) for r, q in queries.items()},
              "real_faces": len(real_faces), "real_face_detection_rate": float(real_found.mean()),
              "face_embedder": embedder.name}
    shared.update(_threshold(tau, calibration, real_emb, real_labels, out or runs[0]))
    shared["real_identity_accuracy"] = same_identity_rate(real_emb, real_labels, shared["tau"])
    grid_targets = target_faces(corpus, 0)

    results, per_identity = {}, {}
    for (run, q), config in zip(queries.items(), configs):
        name = config.get("generator", config["kind"])
        gen_emb, gen_found = embedder.embed(q.faces, progress=progress)
        d = distances_to_identities(gen_emb, real_emb, real_labels, identities)
        true_col = np.array([identities.index(i) for i in q.identity])
        gender = np.array([genders[i] for i in identities])
        quality = None if q.targets is None else image_quality_per_image(q.targets, q.faces)
        metrics = {"generator": name, "run": str(run),
                   **face_scores(gen_emb, gen_found, q.identity, real_emb, real_labels, shared["tau"], d, true_col,
                                 gender, quality),
                   "images_per_second": len(q.identity) / q.seconds, **shared}
        scores = identity_scores(q.identity, gen_emb, real_emb, real_labels, shared["tau"], d, true_col, identities,
                                 gender, quality)
        metrics["statistics"] = {name: metric_statistics(values, baselines)
                                 for name, (values, baselines) in scores.items()}
        per_identity[name] = {metric: values for metric, (values, _) in scores.items()}
        report = Path(run) / "report"
        _qualitative_grid(report / "qualitative.png", identities, q.identity, q.faces,
                          face_images(corpus, [corpus.faces[grid_targets[i]] for i in identities]))
        plot_tsne(report / "face_tsne.png", np.concatenate([real_emb, gen_emb]),
                  np.concatenate([real_labels, [f"{i} (generated)" for i in q.identity]]),
                  f"{name}: real and generated face embeddings (t-SNE)")
        atomic.write_text(report / "report.md", comparison_markdown({name: metrics}, shared))
        write_evaluation(run, metrics)  # last: the evaluation is complete
        results[name] = metrics
    summary = {"runs": results, "between_runs": between_runs(per_identity), **shared}
    if out is not None:
        atomic.write_json(Path(out) / "comparison.json", summary)
        atomic.write_text(Path(out) / "comparison.md", comparison_markdown(results, shared))
    return summary


def face_scores(generated_emb: np.ndarray, generated_found: np.ndarray, query_identity: np.ndarray,
                real_emb: np.ndarray, real_labels: np.ndarray, tau: float, distances: np.ndarray,
                true_column: np.ndarray, genders: np.ndarray, quality: dict[str, np.ndarray] | None = None) -> dict:
    """The summary scores of one set of generated faces (``evaluate-2d``'s and a gan2d run's periodic
    evaluation): identity accuracy at τ, the face-found rate, the image metrics' means (or None),
    1:2 matching (unstratified and gender-stratified) and recall@1/5/10.

    Args as :func:`identity_scores`, with ``generated_found`` (Q,) bool: dlib found a face.
    """
    return {
        "identity_accuracy": identity_accuracy(generated_emb, query_identity, real_emb, real_labels, tau),
        "generated_face_detection_rate": float(np.mean(generated_found)),
        "image_quality": None if quality is None else {k: float(v.mean()) for k, v in quality.items()},
        "matching_1v2": matching_1v2(distances, true_column),
        "matching_1v2_gender_stratified": matching_1v2(distances, true_column, genders),
        "recall_at": {str(k): v for k, v in recall_at_k(distances, true_column).items()}}


CHANCE_BASELINE = "chance"
OTHER_IDENTITIES_BASELINE = "real faces of other identities"


def identity_scores(query_identity: np.ndarray, generated_emb: np.ndarray, real_emb: np.ndarray,
                    real_labels: np.ndarray, tau: float, distances: np.ndarray, true_column: np.ndarray,
                    identities: list, genders: np.ndarray,
                    quality: dict[str, np.ndarray] | None = None) -> dict[str, tuple[np.ndarray, dict]]:
    """Every metric of one run per test identity, with what it is compared with.

    Args:
        query_identity: (Q,) the identity of each generated face's voice; generated_emb (Q, D) their
            embeddings; real_emb (G, D), real_labels (G,) the real faces'.
        distances: (Q, K) from ``distances_to_identities``; true_column (Q,) each query's column.
        identities: the K test identities; genders (K,) theirs.
        quality: image metric -> (Q,) per generated face (``image_quality_per_image``), or None.

    Returns:
        metric -> ((K,) value per identity, {baseline name: (K,) values or one number}): identity
        accuracy against the same faces' matches with other identities' real faces; 1:2 matching and
        recall@k against chance; the image metrics (gan2d runs) with no baseline.
    """
    hits = identity_hits(generated_emb, query_identity, real_emb, real_labels, tau)
    won, trials = matching_1v2_per_query(distances, true_column)
    won_gender, trials_gender = matching_1v2_per_query(distances, true_column, genders)
    rank = true_identity_rank(distances, true_column)
    ones = np.ones(len(query_identity))

    def by_identity(numerator, denominator=ones):
        return per_identity_ratio(numerator, denominator, query_identity, identities)

    k_all = len(identities)
    scores = {
        "identity_accuracy": (by_identity(hits["own_hits"], hits["own_pairs"]),
                              {OTHER_IDENTITIES_BASELINE: by_identity(hits["other_hits"], hits["other_pairs"])}),
        "matching_1v2": (by_identity(won, trials), {CHANCE_BASELINE: 0.5}),
        "matching_1v2_gender_stratified": (by_identity(won_gender, trials_gender), {CHANCE_BASELINE: 0.5}),
        **{f"recall_at_{k}": (by_identity(rank <= k), {CHANCE_BASELINE: min(k, k_all) / k_all}) for k in (1, 5, 10)},
    }
    for metric, values in (quality or {}).items():
        scores[metric] = (by_identity(values), {})
    return scores


def between_runs(per_identity: dict[str, dict[str, np.ndarray]]) -> dict:
    """Each run against each other run on every metric both have, paired over the test identities:
    metric -> run -> {other run: ``paired_comparison``} (empty with a single run)."""
    comparisons = {}
    for name, scores in per_identity.items():
        for metric, values in scores.items():
            others = {other: s[metric] for other, s in per_identity.items() if other != name and metric in s}
            found = metric_statistics(values, others) if others else None
            if found is not None:
                comparisons.setdefault(metric, {})[name] = found["vs"]
    return comparisons


def statistics_markdown(results: dict[str, dict]) -> list[str]:
    """Markdown lines: each run's metrics as the mean over test identities with its 95% bootstrap
    interval, and against each baseline the gain, its interval and the sign-flip p-value."""
    lines = ["## How sure: 95% bootstrap intervals over the test identities, paired sign-flip tests", "",
             "Gain = mean / baseline mean − 1 (higher is better for accuracies and recall).", "",
             "| generator | metric | mean over identities [95% CI] | against | gain [95% CI] | p | significant at 5% |",
             "|---|---|---|---|---|---|---|"]
    for name, m in results.items():
        for metric, found in m["statistics"].items():
            if found is None:
                lines.append(f"| {name} | {metric} | — (fewer than two identities with a value) | | | | |")
                continue
            mean = found["mean"]
            cell = f"{mean['estimate']:.4g} [{mean['low']:.4g}, {mean['high']:.4g}]"
            if not found["vs"]:
                lines.append(f"| {name} | {metric} | {cell} | | | | |")
            for baseline, c in found["vs"].items():
                lines.append(f"| {name} | {metric} | {cell} | {baseline} | {' '.join(gain_texts(c['gain']))} | "
                             f"{c['p_value']:.4f} | {'yes' if c['significant'] else 'no'} |")
    return lines + [""]


def _threshold(tau, calibration, real_emb, real_labels, figure_dir) -> dict:
    """τ and where it came from: given, a calibrate-faces result, or grid-searched on the real faces."""
    if tau is not None:
        return {"tau": float(tau), "tau_source": "given"}
    if calibration is not None:
        path = Path(calibration)
        path = path / "calibration.json" if path.is_dir() else path
        if not path.is_file():
            raise VoxfaceError(f"no calibration at {path}; run `voxface calibrate-faces` first")
        saved = read_json(path, "calibration")
        tau = saved.get("tau") if isinstance(saved, dict) else None
        if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not np.isfinite(tau):
            raise VoxfaceError(f"calibration {path} holds no number 'tau'; run `voxface calibrate-faces` again")
        return {"tau": float(tau), "tau_source": str(path)}
    distances, same = pair_distances(real_emb, real_labels)
    found, sweep = calibrate_threshold(distances, same)
    plot_threshold_sweep(Path(figure_dir) / "threshold_sweep.png", sweep, found.tau, "real test faces: verification vs τ")
    return {"tau": found.tau, "tau_source": "grid search on the test identities' real faces",
            "real_face_verification": found.to_dict()}


def _qualitative_grid(path: Path, identities: list[str], query_identity: np.ndarray, generated: np.ndarray,
                      targets: np.ndarray, per_row: int = 4) -> None:
    """One row per identity: its target face, then up to ``per_row`` faces generated from its voices (Fig. 10)."""
    fig, axes = plt.subplots(len(identities), per_row + 1, figsize=(1.3 * (per_row + 1), 1.3 * len(identities)),
                             squeeze=False)
    for r, ident in enumerate(identities):
        faces = generated[query_identity == ident][:per_row]
        axes[r, 0].imshow(targets[r])
        axes[r, 0].set_ylabel(ident, fontsize=6)
        for c in range(per_row):
            if c < len(faces):
                axes[r, c + 1].imshow(faces[c])
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_title("real", fontsize=7)
    for c in range(per_row):
        axes[0, c + 1].set_title("generated", fontsize=7)
    fig.tight_layout()
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def comparison_markdown(results: dict[str, dict], shared: dict) -> str:
    """Table I / II analogues and the later-work scores of one or more generators, as Markdown."""
    generated = sum(shared["generated_faces"].values())
    lines = [f"# Voice to 2D face: {shared['corpus']}", "",
             f"{shared['test_identities']} test identities, {generated} generated faces, "
             f"{shared['real_faces']} real faces; τ = {shared['tau']:.2f} ({shared['tau_source']}).", "",
             "## Table I analogue: identity accuracy (generated vs real faces of the voice's identity, L2 < τ)", "",
             f"The verifier's ceiling at this τ: real faces of one identity against each other are called the same "
             f"person in {100 * shared['real_identity_accuracy']:.2f}% of pairs.", "",
             "| generator | accuracy | 1:2 matching | 1:2 gender-stratified | R@1 | R@5 | R@10 | face found |",
             "|---|---|---|---|---|---|---|---|"]
    for name, m in results.items():
        r = m["recall_at"]
        lines.append(f"| {name} | {100 * m['identity_accuracy']:.2f}% | {100 * m['matching_1v2']:.2f}% | "
                     f"{100 * m['matching_1v2_gender_stratified']:.2f}% | {100 * r['1']:.1f}% | {100 * r['5']:.1f}% | "
                     f"{100 * r['10']:.1f}% | {100 * m['generated_face_detection_rate']:.0f}% |")
    lines += ["", "## Table II analogue: image quality against the identity's target face", "",
              "Images in [0, 1]; SNR and PSNR in dB; PAMSE on grey levels 0–255; SSIM in [−1, 1].", "",
              "| generator | " + " | ".join(METRICS) + " |", "|---" * (len(METRICS) + 1) + "|"]
    for name, m in results.items():
        q = m["image_quality"]
        cells = ["— (no target: trained elsewhere)"] + [""] * (len(METRICS) - 1) if q is None else \
            [f"{q[k]:.3f}" for k in METRICS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [""] + statistics_markdown(results)
    lines += ["Synthetic data: these numbers say how well a generator recovers identities of the "
              "synthetic corpus, not how real voices relate to real faces.", ""]
    return "\n".join(lines)

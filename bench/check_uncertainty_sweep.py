"""Does "what the voice tells" follow the truth as the voice–face link gets stronger?

Usage: .venv/bin/python bench/check_uncertainty_sweep.py --out runs/sweep [--strengths 0 0.5 0.8 1]

For each link strength s: a synthetic corpus (100 identities × 10 utterances, one photo each: the
supervised method uses no photos), the CMP encoder pre-trained on it (configs/speaker_fast.yaml), the
supervised method with a Gaussian head (configs/supervised_uncertainty.yaml), and ``evaluate``. Prints
and writes (``OUT/sweep.json``, ``OUT/sweep.png``), per s, the share of the population's variance
of the face and of each ratio that the voice removes: as the model claims it (its predictive
variance), as it achieves it (its error on the test identities) and as a perfect listener could
(the truth of the generative model, evaluate/listener.py); with the coverage of the 90% intervals.
Each stage resumes, so the command can be run again after an interruption. About 4 minutes per
strength on 2 cores.
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from voxface.corpus.synthetic import SynthConfig, generate_corpus  # noqa: E402
from voxface.face3d import RATIOS  # noqa: E402
from voxface.methods.speaker import Config as SpeakerConfig  # noqa: E402
from voxface.methods.speaker import fit as train_speaker_encoder
from voxface.methods.supervised import Config as SupervisedConfig  # noqa: E402
from voxface.methods.supervised import fit as train_supervised
from voxface.reports.voice_to_3d import evaluate_run  # noqa: E402
from voxface.runs.config import build, load_yaml  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def run_strength(out: Path, strength: float) -> dict:
    """The corpus, the two trainings and the evaluation for one link strength; the numbers."""
    corpus = out / "corpus"
    if not (corpus / "manifest.json").is_file():
        generate_corpus(corpus, SynthConfig(identities=100, utterances=10, images=1, link_strength=strength),
                        progress=False)
    speaker = build(SpeakerConfig, load_yaml(CONFIGS / "speaker_fast.yaml"), {"corpus": str(corpus)})
    train_speaker_encoder(speaker, out / "speaker", progress=False)
    supervised = build(SupervisedConfig, load_yaml(CONFIGS / "supervised_uncertainty.yaml"),
                       {"corpus": str(corpus), "speaker_run": str(out / "speaker")})
    train_supervised(supervised, out / "supervised", progress=False)
    metrics = evaluate_run(out / "supervised", progress=False)
    u = metrics["uncertainty"]
    explained = {"claimed": u["explained_variance"]["claimed"], "achieved": u["explained_variance"]["achieved"],
                 "truth": u["perfect_listener"]["explained"]}
    return {"link_strength": strength, "ARE": metrics["methods"]["CMP-supervised"]["ARE"]["mean"],
            "coverage_90": {k: u["coverage"][k]["0.9"] for k in ("coefficients", "ratios")},
            "whole_face": {k: v["whole_face"] for k, v in explained.items()},
            "ratios": {k: {r: v["ratios"][r] for r in RATIOS} for k, v in explained.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/sweep"))
    parser.add_argument("--strengths", type=float, nargs="+", default=[0.0, 0.5, 0.8, 1.0])
    args = parser.parse_args()
    rows = [run_strength(args.out / f"s{s:g}", s) for s in args.strengths]
    (args.out / "sweep.json").write_text(json.dumps(rows, indent=2))
    print(f"{'s':>4} {'ARE':>7} {'cov90 z':>8} {'cov90 r':>8}   whole face: claimed / achieved / truth   "
          "mean over ratios: claimed / achieved / truth")
    for r in rows:
        w = r["whole_face"]
        ratios = {k: sum(v.values()) / len(v) for k, v in r["ratios"].items()}
        print(f"{r['link_strength']:4.2f} {r['ARE']:7.4f} {r['coverage_90']['coefficients']:8.3f} "
              f"{r['coverage_90']['ratios']:8.3f}   {w['claimed']:6.3f} / {w['achieved']:6.3f} / {w['truth']:6.3f}"
              f"                {ratios['claimed']:6.3f} / {ratios['achieved']:6.3f} / {ratios['truth']:6.3f}")
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
    strengths = [r["link_strength"] for r in rows]
    for ax, title, pick in ((axes[0], "whole face", lambda r, k: r["whole_face"][k]),
                            (axes[1], "mean over the four ratios",
                             lambda r, k: sum(r["ratios"][k].values()) / len(RATIOS))):
        for key, style in (("claimed", "o-"), ("achieved", "s--"), ("truth", "k^:")):
            ax.plot(strengths, [pick(r, key) for r in rows], style, label=key)
        ax.set_title(title)
        ax.set_xlabel("link strength s")
    axes[0].set_ylabel("share of population variance removed")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out / "sweep.png", dpi=100)
    print(f"written: {args.out / 'sweep.json'}, {args.out / 'sweep.png'}")


if __name__ == "__main__":
    main()

"""Evaluation reports: ``report.md`` and a self-contained ``report.html`` (images embedded) with the
paper's tables, bar charts and renders of predicted versus reference meshes."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..evaluate.statistics import gain_texts  # noqa: E402
from ..face3d import RATIOS, REGIONS, MorphableModel  # noqa: E402
from ..runs import atomic  # noqa: E402

N_RENDERED = 4


def write_report(run: Path, metrics: dict, model: MorphableModel, test_ids: list[str], references: np.ndarray,
                 predictions: dict[str, np.ndarray], corpus) -> Path:
    """Write figures, ``report.md`` and ``report.html`` into ``run/report``, which appears whole (the
    previous one stays until then); return the HTML path."""
    with atomic.atomic_folder(run / "report") as out:
        _write_report(out, metrics, model, test_ids, references, predictions, corpus)
    return run / "report" / "report.html"


def _write_report(out: Path, metrics: dict, model: MorphableModel, test_ids: list[str], references: np.ndarray,
                  predictions: dict[str, np.ndarray], corpus) -> None:
    figures = {
        "ARE per ratio": _are_bars(metrics, out / "are_by_ratio.png"),
        "RMSE per region": _rmse_bars(metrics, out / "rmse_by_region.png"),
        "Predicted vs reference meshes": _renders(model, test_ids, references, predictions[metrics["method"]],
                                                  corpus, out / "renders.png"),
    }
    sections = _sections(metrics)
    if metrics.get("uncertainty"):
        figures["Reliability of the predicted intervals"] = _reliability(metrics["uncertainty"], out / "reliability.png")
        if "floor" in metrics["uncertainty"]:
            figures["Predicted variance against the perfect listener's floor"] = _floor(
                metrics["uncertainty"], out / "variance_floor.png")
        figures["What the voice tells"] = _explained(metrics["uncertainty"], out / "what_the_voice_tells.png")
        sections += _uncertainty_sections(metrics["uncertainty"])
    atomic.write_text(out / "report.md", _markdown(metrics, sections, figures))
    atomic.write_text(out / "report.html", _html(metrics, sections, figures))


def _intro(metrics: dict) -> list[str]:
    mm = metrics["morphable_model"]
    lines = [f"Run `{metrics['run']}` on corpus `{metrics['corpus']}`: {metrics['n_test_identities']} test "
             f"identities (names A–E), {metrics['utterances_per_identity']} utterances each. Morphable model "
             f"`{mm['name']}` ({mm['n_vertices']} vertices, {mm['n_shape']} shape components, units {mm['units']})."]
    if metrics["synthetic"]:
        lines.append(f"**The data is synthetic** (voxface's generated corpus, link strength "
                     f"{metrics['link_strength']}: the share of the linked voice parameters' variance that face "
                     "geometry explains). Numbers here say how well the method recovers a known, synthetic "
                     "voice–face link, not how real voices relate to real faces.")
    if metrics.get("share_of_ceiling_gap_recovered") is not None:
        lines.append(f"{metrics['method']} recovers {100 * metrics['share_of_ceiling_gap_recovered']:.0f}% of the "
                     "gap in mean ARE between the mean-face oracle and the voice ceiling.")
    return lines


def _sections(metrics: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) tables."""
    methods = metrics["methods"]
    t1 = [[name, *(f"{r['ARE'][k]:.4f}" for k in (*RATIOS, "mean")), f"{100 * r['gain_vs_mean_face']:+.1f}%",
           f"{100 * r['gain_vs_gender_oracle']:+.1f}%"] for name, r in methods.items()]
    s2 = [[name, f"{r['NME']['cmp']:.4f}", f"{r['NME']['per_point']:.4f}"] for name, r in methods.items()]
    s3 = [[name, *(f"{r['RMSE'][k]:.3f}" for k in ("holistic", *REGIONS))] for name, r in methods.items()]
    c = metrics["coherence"]
    coh = [[metrics["method"], f"{c['mean']:.3f}", f"{c['std']:.3f}", f"{c['within_speaker_distance']:.3f}",
            f"{c['between_speaker_distance']:.3f}"]]
    units = metrics["units"]
    stats = metrics["statistics"]["methods"]
    ci = [[name, f"{s['mean']['estimate']:.4f}", f"[{s['mean']['low']:.4f}, {s['mean']['high']:.4f}]"]
          for name, s in stats.items()]
    tests = [[name, baseline, *gain_texts(c["gain"]), _p_value(c["p_value"]), "yes" if c["significant"] else "no"]
             for name, s in stats.items() for baseline, c in s["vs"].items()]
    return [
        ("ARE (paper Table 1, S-6)", ["method", *RATIOS, "mean", "gain vs mean face", "gain vs gender"], t1),
        ("Mean ARE with its 95% bootstrap interval over test identities", ["method", "mean ARE", "95% CI"], ci),
        ("Each method against each oracle / baseline (paired over identities)",
         ["method", "against", "gain in mean ARE", "95% CI", "p (sign-flip test)", "significant at 5%"], tests),
        ("NME over 68 landmarks (Table S-2)", ["method", "CMP script: ‖Δ‖₂ of 204-vector / √(w·h)",
                                               "per point: mean ‖Δ‖ / √(w·h)"], s2),
        (f"Point-to-plane RMSE after ICP, {units} (Tables S-3/S-4)", ["method", "holistic", *REGIONS], s3),
        (f"Coherence across utterances (Fig. 10), {units}",
         ["method", "mean distance to centre", "std", "within-speaker", "between-speaker"], coh),
    ]


def _uncertainty_sections(u: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """Tables of the predictive distribution: coverage, NLL, explained variance (with the truth)."""
    coverage = [[kind, *(f"{100 * u['coverage'][kind][q]:.1f}%" for q in ("0.5", "0.9"))]
                for kind in ("coefficients", "ratios")]
    nll = [[name, f"{value:.2f}"] for name, value in u["nll"].items()]
    columns = {"claimed": u["explained_variance"]["claimed"], "achieved": u["explained_variance"]["achieved"]}
    if "perfect_listener" in u:
        columns["truth"] = u["perfect_listener"]["explained"]
    explained = [[name, *(f"{100 * c[group][name]:.0f}%" for c in columns.values())]
                 for group in ("ratios", "regions") for name in columns["claimed"][group]]
    explained.append(["whole face", *(f"{100 * c['whole_face']:.0f}%" for c in columns.values())])
    tables = [("Coverage of the predicted central intervals (nominal 50% and 90%)",
               ["true values", "inside 50%", "inside 90%"], coverage),
              ("Negative log-likelihood of the true coefficients (nats per test voice, lower is better)",
               ["distribution", "NLL"], nll),
              ("What the voice tells: share of the population's variance the prediction removes",
               ["ratio / region", "claimed (its variance)", "achieved (its error)", "perfect listener (truth)"][
                   :1 + len(columns)], explained)]
    if "floor" in u:
        k = len(u["floor"]["variance"])
        tables.append(("Surer than a perfect listener?", ["components with predicted variance below the floor",
                                                          "share"],
                       [[f"{len(u['floor']['overconfident_components'])} of {k} "
                         f"{u['floor']['overconfident_components']}", f"{100 * u['floor']['share_overconfident']:.0f}%"]]))
    return tables


def _reliability(u: dict, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="calibrated")
    for kind in ("coefficients", "ratios"):
        r = u["reliability"][kind]
        ax.plot(r["nominal"], r["observed"], marker="o", label=kind)
    ax.set_xlabel("nominal coverage of the central interval")
    ax.set_ylabel("observed share of true values inside")
    ax.legend(fontsize=8)
    return _save(fig, path)


def _floor(u: dict, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 3))
    k = np.arange(len(u["floor"]["variance"]))
    ax.bar(k - 0.2, u["predicted_variance"], 0.4, label="predicted variance (mean over test voices)")
    ax.bar(k + 0.2, u["floor"]["variance"], 0.4, label="perfect listener's residual variance (floor)")
    ax.set_xlabel("shape component")
    ax.set_ylabel("variance (standardised units)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def _explained(u: dict, path: Path) -> Path:
    groups = {"claimed (its variance)": u["explained_variance"]["claimed"],
              "achieved (its error)": u["explained_variance"]["achieved"]}
    if "perfect_listener" in u:
        groups["perfect listener (truth)"] = u["perfect_listener"]["explained"]
    claimed = u["explained_variance"]["claimed"]
    names = [*claimed["ratios"], *claimed["regions"]]
    series = {label: [*g["ratios"].values(), *g["regions"].values()] for label, g in groups.items()}
    fig, ax = plt.subplots(figsize=(8, 3.2))
    _bars(ax, [n.replace("_", "\n") for n in names], series)
    ax.set_ylabel("share of population variance removed")
    ax.axhline(0, color="black", linewidth=0.5)
    return _save(fig, path)


def _p_value(p: float) -> str:
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}"


def _markdown(metrics: dict, sections, figures: dict[str, Path]) -> str:
    lines = ["# Voice → 3D face evaluation", ""]
    for paragraph in _intro(metrics):
        lines += [paragraph, ""]
    for title, header, rows in sections:
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows] + [""]
    lines += ["Gains are relative changes of mean ARE (negative = lower error). ARE and NME are dimensionless.", ""]
    for title, path in figures.items():
        lines += [f"## {title}", "", f"![{title}]({path.name})", ""]
    return "\n".join(lines)


def _html(metrics: dict, sections, figures: dict[str, Path]) -> str:
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>voxface evaluation</title><style>",
             "body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child{text-align:left}"
             "img{max-width:100%}</style></head><body><h1>Voice → 3D face evaluation</h1>"]
    parts += [f"<p>{html.escape(p).replace('**', '')}</p>" for p in _intro(metrics)]
    for title, header, rows in sections:
        parts.append(f"<h2>{html.escape(title)}</h2><table><tr>"
                     + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows]
        parts.append("</table>")
    for title, path in figures.items():
        data = base64.b64encode(path.read_bytes()).decode()
        parts.append(f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _bars(ax, labels: list[str], series: dict[str, list[float]]) -> None:
    width = 0.8 / len(series)
    x = np.arange(len(labels))
    for k, (name, values) in enumerate(series.items()):
        ax.bar(x + k * width - 0.4 + width / 2, values, width, label=name)
    ax.set_xticks(x, labels)
    ax.legend(fontsize=8)


def _are_bars(metrics: dict, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 3.2))
    keys = [*RATIOS, "mean"]
    _bars(ax, keys, {n: [r["ARE"][k] for k in keys] for n, r in metrics["methods"].items()})
    ax.set_ylabel("ARE (lower is better)")
    return _save(fig, path)


def _rmse_bars(metrics: dict, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 3.2))
    keys = ["holistic", *REGIONS]
    _bars(ax, [k.replace("_", "\n") for k in keys], {n: [r["RMSE"][k] for k in keys]
                                                      for n, r in metrics["methods"].items()})
    ax.set_ylabel(f"RMSE ({metrics['units']})")
    return _save(fig, path)


def _renders(model: MorphableModel, test_ids, references, predictions, corpus, path: Path) -> Path:
    from ..face3d.render import render_mesh

    names = {i.identity: i.name for i in corpus.identities}
    faces = {}
    for f in corpus.faces:
        faces.setdefault(f.identity, f)
    n = min(N_RENDERED, len(test_ids))
    fig, axes = plt.subplots(n, 4, figsize=(9, 2.4 * n), squeeze=False)
    for row in range(n):
        ref, pred = references[row], predictions[row, 0]
        error = np.linalg.norm(pred - ref, axis=1)
        colours = plt.get_cmap("inferno")(np.clip(error / max(error.max(), 1e-9), 0, 1))[:, :3]
        panels = [plt.imread(corpus.path(faces[test_ids[row]].image_120)) if test_ids[row] in faces else None,
                  render_mesh(ref, model.triangles, size=200), render_mesh(pred, model.triangles, size=200),
                  render_mesh(pred, model.triangles, colors=colours, size=200)]
        titles = [names[test_ids[row]], "reference", "predicted (utt. 1)", f"error, max {error.max():.2f} {model.units}"]
        for ax, image, title in zip(axes[row], panels, titles):
            if image is not None:
                ax.imshow(image)
            ax.set_title(title, fontsize=8)
            ax.set_axis_off()
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path

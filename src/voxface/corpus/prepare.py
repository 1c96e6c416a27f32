"""Turn real recordings and photos into a corpus: per-file work items, resumable, shardable, parallel.

A :class:`PreparePlan` lists the people (identity, name, gender) and one :class:`WorkItem` per input
file:

- ``audio``: decode to 16 kHz mono, check there is enough speech after VAD, write
  ``audio/<identity>/<utterance>.wav`` and its CMP log-mel features
  ``features/cmp_logmel/<identity>/<utterance>.npy`` (what ``voxface.corpus.features`` would compute);
- ``features``: a published (T, 64) log-mel ``.npy`` copied into the feature cache (no audio);
- ``face``: detect the largest face (up-sampling small photos), 68 landmarks, aligned 64 and 120
  pixel crops, and a landmark fit of the morphable model with the plan's ``fitter`` (``voxface`` or
  ``eos``, :mod:`voxface.face3d.fitting`);
- ``mesh``: a released reconstruction (CMP's Voxceleb-3D ``.xyz`` point cloud or ``.obj``) in the
  model's topology, copied to ``meshes/<identity>/<key><suffix>`` and fitted vertex by vertex
  (:func:`voxface.face3d.fitting.fit_vertices`); an identity's best-fitting mesh becomes its reference.

Each item writes its outputs atomically, then its record ``.prepare/records/<kind>/<identity>/<key>.json``
(``status`` ``ok`` with the results, or ``skipped`` with a ``reason``: unreadable, too short, no face,
bad features, other topology). A rerun skips items that have a record, so a killed run resumes without redoing
finished items or trusting half-written ones. ``--shard K/N`` processes the identities whose
CRC-32 is K-1 modulo N and leaves ``.prepare/shards/K-of-N.json``; :func:`finalise` (after the
last shard, or ``voxface prepare merge``) writes the tables, ``skipped.csv``, ``summary.json`` and,
last, ``manifest.json``.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import zlib
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from ..errors import VoxfaceError
from ..face3d import MorphableModel
from ..face3d.fitting import DEFAULT_FITTER, Fitter, LandmarkFit, fit_vertices, make_fitter
from ..runs import atomic
from .format import IMAGE_SIZES, SAMPLE_RATE, Corpus, manifest_header, split_for_name, write_csv, write_tables
from .reference import choose_reference

log = logging.getLogger(__name__)

PREPARE_DIR = ".prepare"
FEATURE_KIND = "cmp_logmel"
FEATURE_BINS = 64
FEATURE_MIN_FRAMES = 1000
FRAMES_PER_SECOND = 100
SMALL_IMAGE = 400
"""Photos whose shorter side is below this many pixels are searched with dlib's 1x up-sampling."""
SKIPPED_COLUMNS = ("kind", "identity", "source", "reason", "detail")
MESH_COLUMNS = ("mesh", "identity", "file", "residual", "flipped_y")


@dataclass(frozen=True)
class Person:
    """One identity of a plan: id, name (sets the A–E / F–Z split) and gender (m|f)."""

    identity: str
    name: str
    gender: str


@dataclass(frozen=True)
class WorkItem:
    """One input file: ``kind`` (audio | features | face), owner, output id and absolute source path."""

    kind: str
    identity: str
    key: str
    source: str


@dataclass
class PreparePlan:
    """Everything a preparation run does.

    Attributes:
        name: corpus name for the manifest.
        settings: what changes the output (model spec, inputs, thresholds); a rerun or a shard with
            other settings is refused.
        people: the identities, in output order.
        items: the work items of all shards.
        require: what an identity needs to be kept: ``"utterances"`` and/or ``"faces"``.
    """

    name: str
    settings: dict
    people: list[Person]
    items: list[WorkItem]
    require: tuple[str, ...]


class _Skipped(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> (K, N) with 1 <= K <= N; VoxfaceError otherwise."""
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        k = n = 0
    if not 1 <= k <= n:
        raise VoxfaceError(f"--shard {text!r}: expected K/N with 1 <= K <= N, e.g. 2/8")
    return k, n


def shard_of(identity: str, n_shards: int) -> int:
    """The shard (1..N) that processes ``identity``: CRC-32 of its id modulo N, plus one."""
    return zlib.crc32(identity.encode("utf-8")) % n_shards + 1


def record_path(root: Path, item: WorkItem) -> Path:
    return root / PREPARE_DIR / "records" / item.kind / item.identity / f"{item.key}.json"


def run_plan(out: str | Path, plan: PreparePlan, model: MorphableModel, workers: int = 1,
             shard: tuple[int, int] = (1, 1), progress: bool = True) -> Corpus | None:
    """Process this shard's unfinished items into ``out``; finalise the corpus when it is the only shard.

    Returns:
        the finished Corpus for an unsharded run, else None (finish with :func:`merge`).
    """
    out = Path(out)
    _write_plan(out, plan, model)
    atomic.remove_stale_temporaries(out)
    k, n = shard
    mine = [item for item in plan.items if shard_of(item.identity, n) == k]
    todo = [item for item in mine if not record_path(out, item).is_file()]
    if len(todo) < len(mine):
        log.info("resuming: %d of %d items already done", len(mine) - len(todo), len(mine))
    bar = tqdm(total=len(mine), initial=len(mine) - len(todo), desc=f"prepare {k}/{n}", unit="file",
               disable=not progress)
    settings = {"root": out, "model": model, "min_seconds": plan.settings.get("min_seconds", 0.5),
                "fitter": plan.settings.get("fitter", DEFAULT_FITTER)}
    if any(item.kind == "face" for item in todo):
        make_fitter(settings["fitter"], model)  # refuse a fitter that cannot fit this model before spawning
    if workers > 1 and len(todo) > 1:
        ctx = mp.get_context("spawn")  # dlib, BLAS and torch threads are not fork-safe
        with ctx.Pool(workers, initializer=_init_worker, initargs=(settings,)) as pool:
            for _ in pool.imap_unordered(_process_item, todo, chunksize=4):
                bar.update()
    else:
        with threadpool_limits(1):
            _init_worker(settings)
            for item in todo:
                _process_item(item)
                bar.update()
    bar.close()
    atomic.write_json(out / PREPARE_DIR / "shards" / f"{k}-of-{n}.json", {"items": len(mine)})
    return finalise(out) if n == 1 else None


def _write_plan(out: Path, plan: PreparePlan, model: MorphableModel) -> None:
    path = out / PREPARE_DIR / "plan.json"
    stored = {"name": plan.name, "settings": plan.settings, "require": list(plan.require),
              "people": [asdict(p) for p in plan.people]}
    stored = json.loads(json.dumps(stored))
    if path.is_file():
        if json.loads(path.read_text()) != stored:
            raise VoxfaceError(f"{out} holds a preparation with other inputs or settings (see {path}); "
                               "use another --out folder or the same arguments as before")
        return
    if (out / "manifest.json").is_file() or (out.exists() and any(out.iterdir())
                                              and not (out / PREPARE_DIR).is_dir()):
        raise VoxfaceError(f"{out} exists and is not an unfinished preparation; choose an empty or new --out")
    atomic.write_bytes(out / "model.npz", model.to_npz_bytes())
    atomic.write_json(path, stored)


_worker: dict = {}


def _init_worker(settings: dict) -> None:
    """Hold a run's settings in this process. Items are small: BLAS threads only add overhead
    (a landmark fit takes 1.4 ms on one thread and about 20 ms with threads on a busy machine)."""
    threadpool_limits(1)
    _worker.update(settings, fit=make_fitter(settings["fitter"], settings["model"]))


def _process_item(item: WorkItem) -> None:
    """Do one item and write its record (after its outputs)."""
    root: Path = _worker["root"]
    try:
        record = {"status": "ok", **_HANDLERS[item.kind](root, item)}
    except _Skipped as s:
        record = {"status": "skipped", "reason": s.reason, "detail": s.detail}
    atomic.write_json(record_path(root, item), {"source": item.source, **record})


def _audio_item(root: Path, item: WorkItem) -> dict:
    from ..audio.features import cmp_logmel
    from ..audio.io import load_audio, save_wav
    from ..audio.voice import prepare_voice

    min_seconds = _worker["min_seconds"]
    try:
        wave = load_audio(item.source, sr=SAMPLE_RATE)
    except VoxfaceError as e:
        raise _Skipped("unreadable", str(e)) from e
    try:
        prepare_voice(wave, sr=SAMPLE_RATE, min_seconds=min_seconds)
    except VoxfaceError as e:
        raise _Skipped("too short", f"{item.source}: {e}") from e
    rel = f"audio/{item.identity}/{item.key}.wav"
    save_wav(root / rel, wave, SAMPLE_RATE)
    features = cmp_logmel(prepare_voice(root / rel, sr=SAMPLE_RATE, min_seconds=min_seconds))
    atomic.write_npy(_feature_file(root, item), features.astype(np.float32))
    return {"audio": rel, "duration_s": round(len(wave) / SAMPLE_RATE, 4)}


def _features_item(root: Path, item: WorkItem) -> dict:
    try:
        features = np.load(item.source, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise _Skipped("unreadable", f"{item.source}: {e}") from e
    if (features.ndim != 2 or features.shape[1] != FEATURE_BINS or len(features) < FEATURE_MIN_FRAMES
            or not np.isfinite(features).all()):
        raise _Skipped("bad features", f"{item.source}: shape {features.shape}, expected finite "
                                       f"(T >= {FEATURE_MIN_FRAMES}, {FEATURE_BINS})")
    atomic.write_npy(_feature_file(root, item), features.astype(np.float32))
    return {"audio": "", "duration_s": round(len(features) / FRAMES_PER_SECOND, 2)}


def _face_item(root: Path, item: WorkItem) -> dict:
    from ..face3d.render import save_png
    from ..vision.images import read_rgb

    try:
        image = read_rgb(item.source)
    except VoxfaceError as e:
        raise _Skipped("unreadable", str(e)) from e
    box = detect_largest_face(image)
    if box is None:
        raise _Skipped("no face", f"{item.source}: dlib found no frontal face")
    face = describe_face(_worker["fit"], image, box)
    record = {"shape": face.fit.shape.tolist(), "expression": face.fit.expression.tolist(),
              "pose": face.fit.pose.tolist(), "residual_px": round(face.fit.residual_px, 4),
              "residual": round(face.fit.residual, 6)}
    for size in IMAGE_SIZES:
        rel = f"faces/{item.identity}/{item.key}_{size}.png"
        save_png(root / rel, face.crops[size])
        record[f"image_{size}"] = rel
        record[f"landmarks_{size}"] = np.round(face.landmarks[size], 3).tolist()
    return record


def _mesh_item(root: Path, item: WorkItem) -> dict:
    import shutil

    model: MorphableModel = _worker["model"]
    try:
        vertices = read_vertices(item.source)
    except VoxfaceError as e:
        raise _Skipped("unreadable", str(e)) from e
    if vertices.shape != model.mean.shape:
        raise _Skipped("other topology", f"{item.source}: {len(vertices)} vertices, the model {model.name!r} has "
                                         f"{model.n_vertices}; released BFM meshes need --model 3ddfa:PATH")
    fit = fit_vertices(model, vertices)
    rel = f"meshes/{item.identity}/{item.key}{Path(item.source).suffix.lower()}"
    with atomic.atomic_path(root / rel) as tmp:
        shutil.copyfile(item.source, tmp)
    return {"mesh": rel, "shape": fit.shape.tolist(), "expression": fit.expression.tolist(),
            "residual": round(fit.residual, 6), "flipped_y": fit.flipped_y}


def read_vertices(path: str | Path) -> np.ndarray:
    """(V, 3) float64 vertices of an ``.xyz`` point cloud (one ``x y z`` row per vertex) or a mesh file."""
    path = Path(path)
    if path.suffix.lower() != ".xyz":
        from ..face3d.mesh_io import load_mesh

        return load_mesh(path)[0]
    try:
        points = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except (OSError, ValueError) as e:
        raise VoxfaceError(f"cannot read the point cloud {path}: {e}") from e
    if points.shape[1] != 3:
        raise VoxfaceError(f"{path}: expected rows of x y z, got {points.shape[1]} columns")
    return points


_HANDLERS = {"audio": _audio_item, "features": _features_item, "face": _face_item, "mesh": _mesh_item}


def _feature_file(root: Path, item: WorkItem) -> Path:
    return root / "features" / FEATURE_KIND / item.identity / f"{item.key}.npy"


def detect_largest_face(image: np.ndarray) -> tuple[int, int, int, int] | None:
    """dlib's largest face box in an (H, W, 3) uint8 photo, or None.

    Photos with a shorter side below ``SMALL_IMAGE`` pixels are searched at 1x up-sampling; when
    nothing is found, the search is repeated once with one more level of up-sampling.
    """
    from ..vision.dlib_faces import detect_faces

    upsample = 1 if min(image.shape[:2]) < SMALL_IMAGE else 0
    boxes = detect_faces(image, upsample=upsample) or detect_faces(image, upsample=upsample + 1)
    return boxes[0] if boxes else None


@dataclass(frozen=True)
class DescribedFace:
    """The face step after detection: the fit and, per crop size, the crop and its landmarks."""

    fit: LandmarkFit
    crops: dict[int, np.ndarray]
    landmarks: dict[int, np.ndarray]


def describe_face(fit: Fitter, image: np.ndarray, box: tuple[int, int, int, int]) -> DescribedFace:
    """68 landmarks in ``box``, the model fit to them, and aligned crops at ``IMAGE_SIZES``.

    Args:
        fit: the fitter (:func:`voxface.face3d.fitting.make_fitter`).
        image: (H, W, 3) uint8 RGB photo.
        box: (left, top, right, bottom) face box.
    """
    from ..vision.align import aligned_crop
    from ..vision.dlib_faces import landmarks68

    points = landmarks68(image, box)
    crops, landmarks = {}, {}
    for size in IMAGE_SIZES:
        crops[size], landmarks[size] = aligned_crop(image, points, size)
    return DescribedFace(fit(points, image.shape[:2]), crops, landmarks)


# ------------------------------------------------------------------------------------ finishing
def merge(shard_dirs: list[str | Path], out: str | Path) -> Corpus:
    """Bring the shards' outputs into ``out`` (copying what is not there) and finalise the corpus."""
    import shutil

    out = Path(out)
    plans = {}
    for shard in map(Path, shard_dirs):
        plan_file = shard / PREPARE_DIR / "plan.json"
        if not plan_file.is_file():
            raise VoxfaceError(f"{shard} is not a prepare shard folder (no {plan_file})")
        plans[shard] = json.loads(plan_file.read_text())
    if len({json.dumps(p, sort_keys=True) for p in plans.values()}) > 1:
        raise VoxfaceError(f"the shard folders {list(map(str, plans))} were prepared with different inputs or "
                           "settings; run every shard with the same arguments")
    for shard in plans:
        if shard.resolve() == out.resolve():
            continue
        for src in sorted(p for p in shard.rglob("*") if p.is_file() and ".tmp" not in p.name):
            dst = out / src.relative_to(shard)
            if not dst.is_file():
                dst.parent.mkdir(parents=True, exist_ok=True)
                with atomic.atomic_path(dst) as tmp:
                    shutil.copyfile(src, tmp)
    return finalise(out)


def finalise(out: str | Path) -> Corpus:
    """Write the tables, ``skipped.csv``, ``summary.json`` and then ``manifest.json`` from the records."""
    out = Path(out)
    plan = json.loads((out / PREPARE_DIR / "plan.json").read_text())
    _check_shards_complete(out)
    model = MorphableModel.from_npz(out / "model.npz")
    records = _read_records(out)
    identities, utterances, faces, fits, meshes, skipped = [], [], [], [], [], []
    for person in plan["people"]:
        ident = person["identity"]
        mine = {kind: records.get((kind, ident), []) for kind in ("audio", "features", "face", "mesh")}
        for kind, rows in mine.items():
            skipped += [{"kind": kind, "identity": ident, **r} for _, r in rows if r["status"] == "skipped"]
        utts = [(key, r) for kind in ("audio", "features") for key, r in mine[kind] if r["status"] == "ok"]
        face_rows = [(key, r) for key, r in mine["face"] if r["status"] == "ok"]
        missing = [need for need, rows in (("utterances", utts), ("faces", face_rows))
                   if need in plan["require"] and not rows]
        if missing:
            skipped.append({"kind": "identity", "identity": ident, "source": person["name"],
                            "reason": f"no usable {missing[0][:-1]}", "detail": f"all its {missing[0]} were skipped"})
            continue
        identities.append({**person, "split": split_for_name(person["name"])})
        utterances += [{"utterance": key, "identity": ident, "audio": r["audio"], "duration_s": r["duration_s"]}
                       for key, r in sorted(utts)]
        face_rows.sort()
        faces += [{"face": key, "identity": ident, **r} for key, r in face_rows]
        fits.append(face_rows)
        meshes.append(sorted((key, r) for key, r in mine["mesh"] if r["status"] == "ok"))
    reference = _write_params(out, model, identities, faces, fits, meshes)
    write_tables(out, identities, utterances, faces)
    write_csv(out / "skipped.csv", SKIPPED_COLUMNS, skipped)
    if any(meshes):
        write_csv(out / "meshes.csv", MESH_COLUMNS,
                  [{"mesh": key, "identity": i["identity"], "file": r["mesh"], "residual": r["residual"],
                    "flipped_y": r["flipped_y"]} for i, rows in zip(identities, meshes) for key, r in rows])
    counts = {"identities": len(identities), "utterances": len(utterances), "faces": len(faces),
              **({"meshes": sum(map(len, meshes))} if any(meshes) else {})}
    summary = {"counts": counts,
               "splits": dict(Counter(i["split"] for i in identities)),
               "skipped": len(skipped),
               "skipped_by_reason": dict(sorted(Counter(f"{s['kind']}: {s['reason']}" for s in skipped).items())),
               "references": reference,
               "face_fit_residual_px_mean": _mean([f["residual_px"] for f in faces]),
               "face_fit_residual_iod_mean": _mean([f["residual"] for f in faces])}
    atomic.write_json(out / "summary.json", summary)
    manifest = {**manifest_header(plan["name"], False, plan["settings"].get("model", ""), model),
                "preparation": plan["settings"], "counts": counts}
    atomic.write_json(out / "manifest.json", manifest)
    log.info("corpus %s: %s; %d skipped (%s)", out, counts, len(skipped), summary["skipped_by_reason"])
    return Corpus(out)


def _check_shards_complete(out: Path) -> None:
    done = [p.stem for p in (out / PREPARE_DIR / "shards").glob("*-of-*.json")]
    totals = {int(name.split("-of-")[1]) for name in done}
    if len(totals) != 1:
        raise VoxfaceError(f"{out}: shard markers {sorted(done)} do not describe one run of N shards; "
                           "finish every shard (voxface prepare ... --shard K/N) and merge their folders")
    n = totals.pop()
    missing = sorted(set(range(1, n + 1)) - {int(name.split("-of-")[0]) for name in done})
    if missing:
        raise VoxfaceError(f"{out}: shard(s) {missing} of {n} are not finished; run them (--shard K/{n}) "
                           "and pass all shard folders to `voxface prepare merge`")


def _read_records(out: Path) -> dict[tuple[str, str], list[tuple[str, dict]]]:
    """(kind, identity) -> [(key, record)] for every finished item."""
    records: dict[tuple[str, str], list[tuple[str, dict]]] = {}
    for path in sorted((out / PREPARE_DIR / "records").glob("*/*/*.json")):
        kind, identity = path.parent.parent.name, path.parent.name
        records.setdefault((kind, identity), []).append((path.stem, json.loads(path.read_text())))
    return records


def _write_params(out: Path, model: MorphableModel, identities: list[dict], faces: list[dict],
                  fits: list[list[tuple[str, dict]]], meshes: list[list[tuple[str, dict]]]) -> dict:
    """Write face_params.npz and identity_params.npz; return reference statistics.

    An identity's reference is its released mesh with the lowest fit residual when it has one
    (``reference_face`` = that mesh's file), else the face chosen by :func:`choose_reference`.
    """
    k, e = model.n_shape, model.n_expression
    shape = np.zeros((len(identities), k), np.float32)
    expression = np.zeros((len(identities), e), np.float32)
    has_reference = np.zeros(len(identities), bool)
    qualified = np.zeros(len(identities), bool)
    reference_face = []
    for n, (rows, mesh_rows) in enumerate(zip(fits, meshes)):
        if mesh_rows:
            _, r = min(mesh_rows, key=lambda row: row[1]["residual"])
            shape[n], expression[n], has_reference[n] = r["shape"], r["expression"], True
            reference_face.append(r["mesh"])
            continue
        if not rows:
            reference_face.append("")
            continue
        chosen = choose_reference(np.array([r["pose"] for _, r in rows]),
                                  np.array([r["expression"] for _, r in rows]).reshape(len(rows), e),
                                  np.array([r["residual"] for _, r in rows]))
        key, r = rows[chosen.index]
        shape[n], expression[n] = r["shape"], r["expression"]
        has_reference[n], qualified[n] = True, chosen.qualified
        reference_face.append(key)
    atomic.write_npz(out / "identity_params.npz", identity=np.array([i["identity"] for i in identities]),
                     shape=shape, expression=expression, has_reference=has_reference,
                     reference_face=np.array(reference_face), reference_rule_met=qualified)
    m = len(faces)
    arrays = {"face": np.array([f["face"] for f in faces]),
              "shape": np.array([f["shape"] for f in faces], np.float32).reshape(m, k),
              "expression": np.array([f["expression"] for f in faces], np.float32).reshape(m, e),
              "pose": np.array([f["pose"] for f in faces], np.float32).reshape(m, 3),
              "residual_px": np.array([f["residual_px"] for f in faces], np.float32),
              "residual": np.array([f["residual"] for f in faces], np.float32)}
    for size in IMAGE_SIZES:
        arrays[f"landmarks_{size}"] = np.array([f[f"landmarks_{size}"] for f in faces], np.float32).reshape(m, 68, 2)
    atomic.write_npz(out / "face_params.npz", **arrays)
    return {"with_reference": int(has_reference.sum()), "meeting_rule": int(qualified.sum()),
            "from_released_meshes": sum(1 for rows in meshes if rows)}


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 6) if values else None

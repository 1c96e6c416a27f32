"""The embedded default corpus: identities with faces from a morphable model and voices linked to them.

``generate_corpus(out, SynthConfig(...))`` writes a complete corpus in the format of
:mod:`voxface.corpus.format`. Work is split by identity over ``workers`` processes; each identity's
random stream is seeded by ``(seed, identity index)``, so the result does not depend on the number
of workers or on interruptions. An identity's files are written atomically and recorded in a
``.done.json`` marker; a rerun skips finished identities and the manifest is written last.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing as mp
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..audio.io import save_wav
from ..audio.synth import FIELD_NAMES, VoiceParams, sample_conditions, synthesize
from ..errors import VoxfaceError
from ..face3d import MorphableModel
from ..face3d.loading import load_morphable_model
from ..face3d.render import save_png
from ..paths import output_folder
from ..runs import atomic, logs
from ..runs.config import Settings, build, count, random_seed, setting, shortest_first
from ..runs.integrity import changed_files, file_sizes
from ..runs.lock import LOCK_FILE, folder_lock
from .face_images import mild_expression_limits, render_face_image, sample_appearance
from .format import IMAGE_SIZES, SAMPLE_RATE, Corpus, manifest_header, split_for_name, write_csv, write_tables
from .link import VoiceFaceLink, sample_shape
from .names import identity_names

log = logging.getLogger(__name__)

LOG_FILE = "synth.log"
DONE_FILE = ".done.json"


@dataclass
class SynthConfig(Settings):
    """Everything that determines a synthetic corpus (stored in its manifest)."""

    identities: int = count(100, minimum=2)
    utterances: int = count(10)
    images: int = count(40)
    seed: int = random_seed()
    model: str = "builtin"
    link_strength: float = setting(0.8, ge=0, le=1)
    duration_s: tuple[float, float] = setting((2.5, 4.0), ge=0.6, le=60, rule=shortest_first)
    name: str = "synthetic-default"
    workers: int = count(2, minimum=0)

    def identity_key(self) -> dict:
        """The settings that change the data (workers and name do not)."""
        d = asdict(self)
        for k in ("workers", "name"):
            d.pop(k)
        d["duration_s"] = list(d["duration_s"])
        return d

    def corpus_key(self) -> dict:
        """The settings a corpus folder is bound to: :meth:`identity_key` without ``images``. The first
        k photos of an identity do not depend on how many it has, so a corpus made with fewer photos
        is completed (and one with more is cut back) by running ``synth`` again with another number."""
        return {k: v for k, v in self.identity_key().items() if k != "images"}


@dataclass(frozen=True)
class PlannedIdentity:
    """One identity's ground truth, fixed before any audio or image is made."""

    index: int
    identity: str
    name: str
    gender: str
    shape: np.ndarray
    voice: VoiceParams


def generate_corpus(out: str | Path, config: SynthConfig, progress: bool = True, log_file: bool = False) -> Corpus:
    """Write the synthetic corpus described by ``config`` into ``out`` and return it.

    Resumes an interrupted run with the same config (and repairs identities whose files went
    missing); refuses a folder holding another corpus. Nothing is written before the target, the
    morphable model and the plan are checked. ``log_file``: also log into ``out/synth.log``.
    """
    out = output_folder(out)
    _check_target(out, config)
    start = time.perf_counter()
    model = load_morphable_model(config.model)
    jobs = plan_identities(model, config)
    with logs.log_file(out / LOG_FILE) if log_file else contextlib.nullcontext():
        return _generate(out, config, model, jobs, progress, start)


def _generate(out: Path, config: SynthConfig, model: MorphableModel, jobs: list, progress: bool,
              start: float) -> Corpus:
    """The writing part of :func:`generate_corpus` (the target, model and plan are checked), under
    the corpus folder's lock (a second writer is refused, naming this one)."""
    with folder_lock(out, "corpus folder"):
        return _generate_locked(out, config, model, jobs, progress, start)


def _generate_locked(out: Path, config: SynthConfig, model: MorphableModel, jobs: list, progress: bool,
                     start: float) -> Corpus:
    atomic.write_json(out / "generator.json", config.identity_key())
    atomic.remove_stale_temporaries(out)

    pending = [j for j in jobs if not _identity_done(out, j, config.images)]
    if len(pending) < len(jobs):
        log.info("resuming: %d of %d identities already done", len(jobs) - len(pending), len(jobs))
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(pending), desc="synth identities",
               unit="id", disable=not progress)
    if config.workers > 1 and len(pending) > 1:
        ctx = mp.get_context("spawn")  # EGL/GL contexts and torch threads are not fork-safe
        with ctx.Pool(config.workers, initializer=_init_worker, initargs=(model, config, out)) as pool:
            for _ in pool.imap_unordered(_run_identity, pending):
                bar.update()
    else:
        _init_worker(model, config, out)
        for job in pending:
            _run_identity(job)
            bar.update()
    bar.close()

    _write_tables(out, model, config, jobs)
    corpus = Corpus(out)
    from .preview import write_preview  # matplotlib import only when a corpus is finished

    write_preview(corpus, out / "preview.png")
    log.info("corpus written to %s in %.1f s", out, time.perf_counter() - start)
    return corpus


def with_photos(corpus_dir: str | Path, images: int, progress: bool = True) -> Corpus:
    """A synthetic corpus with at least ``images`` photos per identity: completed in place (its voices,
    shapes and first photos unchanged) when it has fewer; any other corpus is returned as it is."""
    corpus = Corpus(corpus_dir)
    made_with = corpus.manifest.get("generator")
    if not corpus.synthetic or made_with is None or made_with.get("images", images) >= images:
        return corpus
    log.info("corpus %s has %d photos per identity; rendering the others up to %d", corpus_dir,
             made_with["images"], images)
    return generate_corpus(corpus_dir, build(SynthConfig, {**made_with, "images": images}), progress=progress)


def _check_target(out: Path, config: SynthConfig) -> None:
    marker = out / "generator.json"
    if marker.is_file():
        try:
            made_with = json.loads(marker.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise VoxfaceError(f"{marker} is damaged (not JSON), so what {out} holds cannot be told; delete the "
                               "folder and generate it again, or choose another --out folder") from None
        if {k: v for k, v in made_with.items() if k != "images"} != config.corpus_key():
            raise VoxfaceError(
                f"{out} holds a synthetic corpus made with other settings (see {marker}); "
                "choose another --out folder or delete this one")
    elif out.exists() and any(p.name not in (LOG_FILE, LOCK_FILE) for p in out.iterdir()):
        raise VoxfaceError(f"{out} exists and is not an unfinished synthetic corpus; "
                           "choose an empty or new --out folder")


def plan_identities(model: MorphableModel, config: SynthConfig) -> list[PlannedIdentity]:
    """Names, genders, shapes and linked voices of all identities (cheap; done in the parent)."""
    if config.identities < 2 or config.utterances < 1 or config.images < 1:
        raise VoxfaceError("a synthetic corpus needs at least 2 identities, 1 utterance and 1 image each")
    rng = np.random.default_rng([config.seed, 0])
    names = identity_names(config.identities, rng)
    genders = rng.permutation(["m", "f"] * ((config.identities + 1) // 2))[: config.identities]
    link = VoiceFaceLink.calibrate(model, config.link_strength, seed=config.seed)
    jobs = []
    for i, (name, gender) in enumerate(zip(names, genders)):
        irng = np.random.default_rng([config.seed, 1, i])
        shape = sample_shape(model, irng, str(gender))
        voice = link.voice_for_face(model, model.reconstruct(shape), str(gender), irng)
        jobs.append(PlannedIdentity(i, f"id{i:05d}", name, str(gender), shape, voice))
    return jobs


_worker: dict = {}


def _init_worker(model: MorphableModel, config: SynthConfig, out: Path) -> None:
    _worker.update(model=model, config=config, root=out, expression_limits=mild_expression_limits(model))


def _run_identity(job: PlannedIdentity) -> None:
    """Synthesise one identity's utterances and face images; write them and a completion marker."""
    model: MorphableModel = _worker["model"]
    config: SynthConfig = _worker["config"]
    root: Path = _worker["root"]
    rng = np.random.default_rng([config.seed, 2, job.index])
    shutil.rmtree(root / "faces" / job.identity, ignore_errors=True)  # photos of an earlier number
    utterances = []
    for u in range(config.utterances):
        conditions = sample_conditions(rng, duration_s=config.duration_s)
        wave = synthesize(job.voice, conditions, sr=SAMPLE_RATE)
        rel = f"audio/{job.identity}/{job.identity}_u{u:02d}.wav"
        save_wav(root / rel, wave, SAMPLE_RATE)
        utterances.append({"utterance": f"{job.identity}_u{u:02d}", "identity": job.identity,
                           "audio": rel, "duration_s": round(len(wave) / SAMPLE_RATE, 4)})
    faces = []
    for k in range(config.images):
        appearance = sample_appearance(rng, model.n_expression, _worker["expression_limits"])
        face_id = f"{job.identity}_f{k:02d}"
        row = {"face": face_id, "identity": job.identity}
        for size in IMAGE_SIZES:
            image, landmarks = render_face_image(model, job.shape, appearance, size)
            rel = f"faces/{job.identity}/{face_id}_{size}.png"
            save_png(root / rel, image)
            row[f"image_{size}"] = rel
            row[f"landmarks_{size}"] = np.round(landmarks, 3).tolist()
        row["expression"] = np.asarray(appearance.expression, dtype=np.float32).tolist()
        row["pose"] = [float(appearance.yaw), float(appearance.pitch), float(appearance.roll)]
        faces.append(row)
    written = [u["audio"] for u in utterances] + [f[f"image_{size}"] for f in faces for size in IMAGE_SIZES]
    atomic.write_json(root / "audio" / job.identity / DONE_FILE,
                      {"utterances": utterances, "faces": faces, "files": file_sizes(root, written)})


def _identity_done(root: Path, job: PlannedIdentity, images: int) -> bool:
    """True when the identity's done-record exists, lists ``images`` photos, and every file it lists
    is on disk with the size it had when written; otherwise (a deleted WAV, a truncated PNG, a
    damaged record, another number of photos) the identity is made again, so a resumed or repeated
    ``synth`` repairs the corpus or gives it the photos asked for."""
    marker = root / "audio" / job.identity / DONE_FILE
    if not marker.is_file():
        return False
    try:
        done = json.loads(marker.read_text())
        sizes = done.get("files") or {u["audio"]: (root / u["audio"]).stat().st_size for u in done["utterances"]}
        if len(done["faces"]) != images:
            return False
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError, OSError):
        log.warning("%s is damaged: identity %s is made again", marker, job.identity)
        return False
    changed = changed_files(root, sizes)
    if changed:
        log.warning("identity %s: %d file(s) missing or changed since it was made (e.g. %s): it is made again",
                    job.identity, len(changed), changed[0])
    return not changed


def _write_tables(out: Path, model: MorphableModel, config: SynthConfig, jobs: list[PlannedIdentity]) -> None:
    utterances, faces = [], []
    for job in jobs:
        done = json.loads((out / "audio" / job.identity / DONE_FILE).read_text())
        utterances += done["utterances"]
        faces += done["faces"]
    identities = [{"identity": j.identity, "name": j.name, "gender": j.gender,
                   "split": split_for_name(j.name)} for j in jobs]
    write_tables(out, identities, utterances, faces)
    write_csv(out / "voice_params.csv", ("identity", *FIELD_NAMES),
              [{"identity": j.identity, **dict(zip(FIELD_NAMES, j.voice.to_vector()))} for j in jobs])
    e = model.n_expression
    atomic.write_npz(out / "identity_params.npz",
                     identity=np.array([j.identity for j in jobs]),
                     shape=np.stack([j.shape for j in jobs]).astype(np.float32),
                     expression=np.zeros((len(jobs), e), np.float32),
                     has_reference=np.ones(len(jobs), bool))
    shape_of = {j.identity: j.shape for j in jobs}
    atomic.write_npz(out / "face_params.npz",
                     face=np.array([f["face"] for f in faces]),
                     shape=np.stack([shape_of[f["identity"]] for f in faces]).astype(np.float32),
                     expression=np.array([f["expression"] for f in faces], np.float32).reshape(len(faces), e),
                     pose=np.array([f["pose"] for f in faces], np.float32),
                     **{f"landmarks_{size}": np.array([f[f"landmarks_{size}"] for f in faces], np.float32)
                        for size in IMAGE_SIZES})
    atomic.write_bytes(out / "model.npz", model.to_npz_bytes())
    manifest = {
        **manifest_header(config.name, True, config.model, model),
        "link_strength": config.link_strength,
        "generator": config.identity_key(),
        "counts": {"identities": len(identities), "utterances": len(utterances), "faces": len(faces)},
    }
    atomic.write_json(out / "manifest.json", manifest)

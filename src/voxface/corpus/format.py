"""The on-disk corpus format (version 1), shared by the synthetic generator and the real-data builders.

A corpus is a folder::

    manifest.json          format, version, name, synthetic?, morphable model, sample rate, counts,
                           and (synthetic only) the generator's resolved configuration
    model.npz              the morphable model the parameters refer to (MorphableModel.to_npz_bytes)
    identities.csv         identity, name, gender (m|f), split (train|test)
    identity_params.npz    identity (N,) str; shape (N, K) and expression (N, E) float32 standardised
                           coefficients of each identity's reference face; has_reference (N,) bool
    utterances.csv         utterance, identity, audio (path relative to the root, or empty when only the
                           cached features features/cmp_logmel/<identity>/<utterance>.npy exist), duration_s
    faces.csv              face, identity, image_64, image_120 (paths relative to the root)
    face_params.npz        face (M,) str; shape (M, K), expression (M, E), pose (M, 3) yaw/pitch/roll in
                           radians of each face image (ground truth, or a fit for real data); optional
                           landmarks_64 / landmarks_120 (M, 68, 2) pixel coordinates of the 68 landmarks
    voice_params.csv       (synthetic only) identity and the true voice-production parameters
    audio/<identity>/<utterance>.wav, faces/<identity>/<face>_{64,120}.png, preview.png

The split follows the papers: identities whose name starts with A–E are the test split, F–Z train.
See docs/corpus_format.md for the full description.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ..errors import VoxfaceError
from ..face3d import MorphableModel
from ..runs import atomic

FORMAT_NAME = "voxface-corpus"
FORMAT_VERSION = 1
TEST_INITIALS = "ABCDE"

IDENTITY_COLUMNS = ("identity", "name", "gender", "split")
UTTERANCE_COLUMNS = ("utterance", "identity", "audio", "duration_s")
FACE_COLUMNS = ("face", "identity", "image_64", "image_120")
SAMPLE_RATE = 16000
"""Hz of every corpus's audio."""
IMAGE_SIZES = (64, 120)
"""Side in pixels of the aligned face crops of every face (``image_64``, ``image_120``)."""


def split_for_name(name: str) -> str:
    """``"test"`` for names starting with A–E (case-insensitive), else ``"train"`` (papers' split)."""
    return "test" if name[:1].upper() in TEST_INITIALS else "train"


@dataclass(frozen=True)
class Identity:
    identity: str
    name: str
    gender: str
    split: str


@dataclass(frozen=True)
class Utterance:
    utterance: str
    identity: str
    audio: str
    duration_s: float


@dataclass(frozen=True)
class Face:
    face: str
    identity: str
    image_64: str
    image_120: str


def write_csv(path: Path, columns: tuple[str, ...], rows: list[dict]) -> None:
    """Write ``rows`` (dicts with at least ``columns``) as CSV, atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic.write_text(path, buf.getvalue())


def write_tables(root: Path, identities: list[dict], utterances: list[dict], faces: list[dict]) -> None:
    """``identities.csv``, ``utterances.csv`` and ``faces.csv`` of a corpus being written at ``root``."""
    write_csv(root / "identities.csv", IDENTITY_COLUMNS, identities)
    write_csv(root / "utterances.csv", UTTERANCE_COLUMNS, utterances)
    write_csv(root / "faces.csv", FACE_COLUMNS, faces)


def manifest_header(name: str, synthetic: bool, spec: str, model: MorphableModel) -> dict:
    """The fields every ``manifest.json`` starts with: format, version, name, synthetic?, who wrote
    it, the morphable model (``spec``: how it was named when the corpus was made), sample rate and
    image sizes; builders add their own after them."""
    from .. import __version__

    return {"format": FORMAT_NAME, "version": FORMAT_VERSION, "name": name, "synthetic": synthetic,
            "created_by": f"voxface {__version__}",
            "morphable_model": {"spec": spec, "name": model.name, "file": "model.npz",
                                "n_vertices": model.n_vertices, "n_shape": model.n_shape,
                                "n_expression": model.n_expression, "units": model.units},
            "sample_rate": SAMPLE_RATE, "image_sizes": list(IMAGE_SIZES)}


def read_csv(path: Path, columns: tuple[str, ...]) -> list[dict]:
    """Rows of a CSV whose header must contain ``columns``; VoxfaceError naming the file otherwise."""
    if not path.is_file():
        raise VoxfaceError(f"corpus file missing: {path} (is this a voxface corpus? run `voxface validate`)")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise VoxfaceError(f"{path}: missing column(s) {missing}; expected header {list(columns)}")
        return list(reader)


class Corpus:
    """Read access to a corpus folder. Tables load lazily; nothing is written."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        manifest_path = self.root / "manifest.json"
        if not manifest_path.is_file():
            raise VoxfaceError(
                f"not a voxface corpus: {self.root} has no manifest.json "
                "(create one with `voxface synth` or `voxface prepare`)")
        try:
            self.manifest = json.loads(manifest_path.read_text())
        except json.JSONDecodeError as e:
            raise VoxfaceError(f"{manifest_path} is not valid JSON ({e}); regenerate the corpus") from e
        if self.manifest.get("format") != FORMAT_NAME:
            raise VoxfaceError(f"{manifest_path}: format is {self.manifest.get('format')!r}, "
                               f"expected {FORMAT_NAME!r}")
        if self.manifest.get("version") != FORMAT_VERSION:
            raise VoxfaceError(f"{manifest_path}: corpus format version {self.manifest.get('version')} "
                               f"is not supported (this voxface reads version {FORMAT_VERSION})")

    @property
    def synthetic(self) -> bool:
        return bool(self.manifest.get("synthetic"))

    @cached_property
    def model(self) -> MorphableModel:
        return MorphableModel.from_npz(self.root / "model.npz")

    @cached_property
    def identities(self) -> list[Identity]:
        return [Identity(**{k: r[k] for k in IDENTITY_COLUMNS})
                for r in read_csv(self.root / "identities.csv", IDENTITY_COLUMNS)]

    @cached_property
    def utterances(self) -> list[Utterance]:
        rows = read_csv(self.root / "utterances.csv", UTTERANCE_COLUMNS)
        return [Utterance(r["utterance"], r["identity"], r["audio"], float(r["duration_s"])) for r in rows]

    @cached_property
    def faces(self) -> list[Face]:
        return [Face(**{k: r[k] for k in FACE_COLUMNS})
                for r in read_csv(self.root / "faces.csv", FACE_COLUMNS)]

    @cached_property
    def identity_params(self) -> dict[str, np.ndarray]:
        """identity (N,), shape (N, K), expression (N, E), has_reference (N,)."""
        return _load_npz(self.root / "identity_params.npz")

    @cached_property
    def face_params(self) -> dict[str, np.ndarray]:
        """face (M,), shape (M, K), expression (M, E), pose (M, 3); optional landmarks_{64,120} (M, 68, 2)."""
        return _load_npz(self.root / "face_params.npz")

    @cached_property
    def voice_params(self) -> tuple[list[str], np.ndarray, list[str]]:
        """(identity ids, (N, P) float64 values, P field names) of the synthetic voice parameters."""
        path = self.root / "voice_params.csv"
        if not path.is_file():
            raise VoxfaceError(f"{self.root} has no voice_params.csv: only synthetic corpora carry the "
                               "true voice-production parameters")
        rows = read_csv(path, ("identity",))
        fields = [c for c in rows[0] if c != "identity"] if rows else []
        return [r["identity"] for r in rows], np.array([[float(r[f]) for f in fields] for r in rows]), fields

    def identity_ids(self, split: str | None = None) -> list[str]:
        """Identity ids in corpus order, optionally only those of ``split`` ("train" or "test")."""
        return [i.identity for i in self.identities if split is None or i.split == split]

    def reference_shapes(self, identity_ids: list[str]) -> np.ndarray:
        """(len(ids), K) standardised shape coefficients of the identities' reference faces."""
        params = self.identity_params
        index = {str(k): n for n, k in enumerate(params["identity"])}
        return params["shape"][[index[i] for i in identity_ids]]

    def path(self, relative: str) -> Path:
        return self.root / relative


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise VoxfaceError(f"corpus file missing: {path}; regenerate or re-import the corpus")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}

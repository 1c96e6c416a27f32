"""Plans that import published layouts and single-modality trees into the corpus format.

- CMP / Wen et al. release: ``<speaker>/<video>/<utt>.npy`` 64-bin log-mel features, float32 (T, 64),
  optionally with the face folders ``<Name>/*.jpg`` and the Voxceleb-3D folders ``<Name>/`` of CMP's
  released reconstructions (README of choyingw/Cross-Modal-Perceptionist, 2022-12-01, and its
  ``cal_size_ARE.py``: per name an image, a mesh ``.obj``, a point cloud ``.xyz`` of the 53,215
  3DDFA-topology vertices, an overlay ``_b.jpg`` and 3DMM parameters ``.npy``). The features become
  the utterances' feature cache (``features/cmp_logmel``) and their ``audio`` column stays empty;
  each ``.xyz`` (or, in a folder without one, each ``.obj``) becomes a ``mesh`` item. The ``.npy``
  parameters are not read: the release documents them only as "199-dim for shape and 29-dim for
  expression" (BFM 2009 / FaceWarehouse bases), not their packing in the file.
- Audio trees without faces (``<speaker>/<video>/<utt>.wav``), for speaker pre-training.
- Face trees without audio (``<Name>/*.jpg``).

Speakers are named and gendered by the metadata table (``vox1_meta.csv`` layout) when it lists
them (by VoxCeleb id for speaker folders, by name for face folders); otherwise the folder name is
the name and ``default_gender`` the gender, or the import is refused naming the folders.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import VoxfaceError
from ..face3d.fitting import DEFAULT_FITTER
from .prepare import Person, PreparePlan, WorkItem
from .voxceleb import audio_files, image_files, read_metadata, utterance_id


def cmp_plan(features_tree: str | Path, model: str, meta: str | Path | None = None,
             faces_tree: str | Path | None = None, default_gender: str | None = None,
             name: str = "cmp-import", fitter: str = DEFAULT_FITTER,
             meshes_tree: str | Path | None = None) -> PreparePlan:
    """Import the CMP release layout: one ``features`` item per ``.npy``, one ``face`` item per photo,
    one ``mesh`` item per released reconstruction in ``meshes_tree/<Name>/``.

    With ``faces_tree`` an identity is kept only if it has both features and a usable face.
    """
    tree = _folder(features_tree)
    people = _people(_subfolders(tree), meta, default_gender, by_name=False)
    faces = _folder(faces_tree) if faces_tree else None
    meshes = _folder(meshes_tree) if meshes_tree else None
    items = []
    for person in people:
        items += [WorkItem("features", person.identity, utterance_id(person.identity, f, tree / person.identity),
                           str(f)) for f in sorted((tree / person.identity).rglob("*.npy"))]
        if faces is not None:
            items += _face_items(faces, person)
        if meshes is not None:
            items += _mesh_items(meshes, person)
    settings = {"source": "cmp", "features": str(tree), "faces": str(faces) if faces else None,
                "meshes": str(meshes) if meshes else None,
                "meta": _resolved(meta), "default_gender": default_gender, "model": model, "fitter": fitter}
    return PreparePlan(name, settings, people, items, ("utterances", "faces") if faces else ("utterances",))


def audio_plan(audio_tree: str | Path, model: str, meta: str | Path | None = None,
               default_gender: str | None = None, min_seconds: float = 1.0,
               name: str = "audio-import") -> PreparePlan:
    """Import an audio tree ``<speaker>/<video>/<utt>.wav`` without faces."""
    tree = _folder(audio_tree)
    people = _people(_subfolders(tree), meta, default_gender, by_name=False)
    items = [WorkItem("audio", p.identity, utterance_id(p.identity, f, tree / p.identity), str(f))
             for p in people for f in audio_files(tree, p.identity)]
    settings = {"source": "audio", "audio": str(tree), "meta": _resolved(meta), "default_gender": default_gender,
                "model": model, "min_seconds": min_seconds}
    return PreparePlan(name, settings, people, items, ("utterances",))


def faces_plan(faces_tree: str | Path, model: str, meta: str | Path | None = None,
               default_gender: str | None = None, name: str = "faces-import",
               fitter: str = DEFAULT_FITTER) -> PreparePlan:
    """Import a face tree ``<Name>/*.jpg`` without audio."""
    tree = _folder(faces_tree)
    people = _people(_subfolders(tree), meta, default_gender, by_name=True)
    items = [item for p in people for item in _face_items(tree, p)]
    settings = {"source": "faces", "faces": str(tree), "meta": _resolved(meta), "default_gender": default_gender,
                "model": model, "fitter": fitter}
    return PreparePlan(name, settings, people, items, ("faces",))


def _face_items(tree: Path, person: Person) -> list[WorkItem]:
    return [WorkItem("face", person.identity, utterance_id(person.identity, f, tree / person.name), str(f))
            for f in image_files(tree, person.name)]


def _mesh_items(tree: Path, person: Person) -> list[WorkItem]:
    """The person's released point clouds ``tree/<Name>/**.xyz``, or its ``.obj`` meshes if it has none."""
    folder = tree / person.name
    files = sorted(folder.rglob("*.xyz")) or sorted(folder.rglob("*.obj"))
    return [WorkItem("mesh", person.identity, utterance_id(person.identity, f, folder), str(f)) for f in files]


def _people(folders: list[str], meta: str | Path | None, default_gender: str | None, by_name: bool) -> list[Person]:
    """A Person per folder: from the metadata (by VoxCeleb id, or by name), else the folder and the default gender."""
    known = read_metadata(meta) if meta else {}
    if by_name:
        known = {p.name: p for p in known.values()}
    unknown = [f for f in folders if f not in known]
    if unknown and default_gender not in ("m", "f"):
        raise VoxfaceError(f"{len(unknown)} folder(s) are not in the metadata table, e.g. {unknown[:3]}: give "
                           "--meta with a vox1_meta.csv-layout table listing them, or --default-gender m|f")
    people = []
    for folder in folders:
        person = known.get(folder) or Person(folder, folder, default_gender)
        people.append(Person(folder, person.name, person.gender) if by_name else person)
    return people


def _folder(path: str | Path) -> Path:
    path = Path(path).resolve()
    if not path.is_dir():
        raise VoxfaceError(f"data folder not found: {path}")
    return path


def _subfolders(tree: Path) -> list[str]:
    folders = sorted(p.name for p in tree.iterdir() if p.is_dir())
    if not folders:
        raise VoxfaceError(f"{tree} has no speaker or person folders; expected <speaker>/... or <Name>/...")
    return folders


def _resolved(path: str | Path | None) -> str | None:
    return str(Path(path).resolve()) if path else None

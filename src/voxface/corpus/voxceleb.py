"""The VoxCeleb x VGGFace identity join: metadata table, audio and image trees, matched by name.

Metadata (``vox1_meta.csv`` layout): tab-separated, header ``VoxCeleb1 ID, VGGFace1 ID, Gender,
Nationality, Set``; the VGGFace ID is the person's name (``A.J._Buckley``), gender ``m``/``f``.
Audio trees are ``<voxceleb id>/<video>/<utt>.{wav,m4a,...}`` (VoxCeleb1 and 2); image trees are
``<Name>/*.jpg`` (VGGFace / VGGFace2, named like the metadata). An identity is kept when it has both
audio and a face folder; the split follows the name's initial (A–E test, F–Z train).
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..errors import VoxfaceError
from ..face3d.fitting import DEFAULT_FITTER
from .prepare import Person, PreparePlan, WorkItem

AUDIO_SUFFIXES = (".wav", ".m4a", ".flac", ".mp3", ".ogg", ".aac")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".pgm", ".bmp", ".webp")
META_COLUMNS = ("VoxCeleb1 ID", "VGGFace1 ID", "Gender")


def read_metadata(path: str | Path) -> dict[str, Person]:
    """VoxCeleb id -> :class:`Person` from a ``vox1_meta.csv``-layout table (tab separated)."""
    path = Path(path)
    if not path.is_file():
        raise VoxfaceError(f"metadata table not found: {path} (give vox1_meta.csv with --meta)")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t")
        fields = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in META_COLUMNS if c not in fields]
        if missing:
            raise VoxfaceError(f"{path}: missing column(s) {missing}; expected the tab-separated vox1_meta.csv "
                               f"header {list(META_COLUMNS)}")
        people = {}
        for row in reader:
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            gender = row["Gender"].lower()[:1]
            if gender not in ("m", "f"):
                raise VoxfaceError(f"{path}: {row['VoxCeleb1 ID']} has gender {row['Gender']!r}; expected m or f")
            people[row["VoxCeleb1 ID"]] = Person(row["VoxCeleb1 ID"], row["VGGFace1 ID"], gender)
    return people


def audio_files(tree: Path, identity: str) -> list[Path]:
    """Sorted audio files under ``tree/<identity>/`` (any depth: ``<video>/<utt>.wav``)."""
    return _files(tree / identity, AUDIO_SUFFIXES)


def image_files(tree: Path, name: str) -> list[Path]:
    """Sorted image files under ``tree/<name>/``."""
    return _files(tree / name, IMAGE_SUFFIXES)


def utterance_id(identity: str, audio: Path, identity_dir: Path) -> str:
    """``<identity>_<video>_<utt>`` from the path below the identity's folder."""
    parts = audio.relative_to(identity_dir).with_suffix("").parts
    return "_".join((identity, *parts))


def join_people(people: dict[str, Person], audio_trees: list[Path], image_tree: Path) -> list[Person]:
    """People with an audio folder in some tree and a face folder named like them, in id order."""
    for tree in [*audio_trees, image_tree]:
        if not tree.is_dir():
            raise VoxfaceError(f"data folder not found: {tree}")
    with_audio = {p.name for tree in audio_trees for p in tree.iterdir() if p.is_dir()}
    with_faces = {p.name for p in image_tree.iterdir() if p.is_dir()}
    joined = [p for i, p in sorted(people.items()) if i in with_audio and p.name in with_faces]
    if not joined:
        raise VoxfaceError(f"no identity has both audio ({', '.join(map(str, audio_trees))}: folders named by "
                           f"VoxCeleb id) and faces ({image_tree}: folders named like the metadata's VGGFace "
                           "names); check the folders and the metadata table")
    return joined


def voxceleb_plan(meta: str | Path, audio_trees: list[str | Path], image_tree: str | Path, model: str,
                  min_seconds: float = 1.0, name: str = "voxceleb-3d", fitter: str = DEFAULT_FITTER) -> PreparePlan:
    """The preparation of VoxCeleb x VGGFace: joined people, one audio item per utterance, one face item per photo.

    Args:
        meta: the ``vox1_meta.csv``-layout table.
        audio_trees: VoxCeleb1/2 folders ``<id>/<video>/<utt>.wav|m4a``; an id found in several trees
            takes the utterances of all of them.
        image_tree: VGGFace folder ``<Name>/*.jpg``.
        model: morphable model spec the faces are fitted with.
        min_seconds: utterances with less speech after VAD are skipped as too short.
        name: corpus name.
        fitter: the landmark fitter (``voxface.face3d.fitting.FITTERS``).
    """
    audio_trees = [Path(t).resolve() for t in audio_trees]
    image_tree = Path(image_tree).resolve()
    people = join_people(read_metadata(meta), audio_trees, image_tree)
    items = []
    for person in people:
        for tree in audio_trees:
            items += [WorkItem("audio", person.identity, utterance_id(person.identity, f, tree / person.identity),
                               str(f)) for f in audio_files(tree, person.identity)]
        items += [WorkItem("face", person.identity, utterance_id(person.identity, f, image_tree / person.name),
                           str(f)) for f in image_files(image_tree, person.name)]
    settings = {"source": "voxceleb", "meta": str(Path(meta).resolve()), "audio": list(map(str, audio_trees)),
                "faces": str(image_tree), "model": model, "min_seconds": min_seconds, "fitter": fitter}
    return PreparePlan(name, settings, people, items, ("utterances", "faces"))


def _files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)

"""Check a corpus folder against the format and report every problem found, not just the first."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from ..errors import VoxfaceError
from .features import damaged_features, feature_path
from .format import Corpus, split_for_name

MAX_LISTED = 20


def find_problems(root: str | Path, check_files: bool = True) -> list[str]:
    """All format violations of the corpus at ``root`` as readable sentences (empty list: valid).

    Args:
        root: the corpus folder.
        check_files: also check that every audio and image file named in the tables exists.
    """
    try:
        corpus = Corpus(root)
        identities, utterances, faces = corpus.identities, corpus.utterances, corpus.faces
        params, face_params, model = corpus.identity_params, corpus.face_params, corpus.model
    except VoxfaceError as e:
        return [str(e)]
    except Exception as e:  # a corrupt npz / csv: report it as a finding, not a crash
        return [f"{root}: unreadable corpus file ({type(e).__name__}: {e})"]

    problems: list[str] = []
    ids = [i.identity for i in identities]
    dupes = [k for k, n in Counter(ids).items() if n > 1]
    if dupes:
        problems.append(f"identities.csv: duplicate identity ids {dupes[:5]}")
    for ident in identities:
        if ident.gender not in ("m", "f"):
            problems.append(f"identities.csv: {ident.identity} has gender {ident.gender!r}, expected m or f")
        if ident.split != split_for_name(ident.name):
            problems.append(f"identities.csv: {ident.identity} ({ident.name}) is in split {ident.split!r}, "
                            f"but names starting {ident.name[:1]!r} belong to {split_for_name(ident.name)!r}")
    known = set(ids)
    problems += _orphans("utterances.csv", [u.identity for u in utterances], known)
    problems += _orphans("faces.csv", [f.identity for f in faces], known)
    problems += _duplicates("utterances.csv", [u.utterance for u in utterances])
    problems += _duplicates("faces.csv", [f.face for f in faces])

    k, e = model.n_shape, model.n_expression
    problems += _param_table("identity_params.npz", params, "identity", ids, k, e)
    problems += _param_table("face_params.npz", face_params, "face", [f.face for f in faces], k, e)
    if "has_reference" in params and faces:  # a corpus without face images has no references
        with_ref = {str(i) for i, h in zip(params["identity"], params["has_reference"]) if h}
        missing_ref = [i.identity for i in identities if i.split == "test" and i.identity not in with_ref]
        if missing_ref:
            problems.append(f"identity_params.npz: test identities without a reference face: {missing_ref[:5]}")

    manifest_counts = corpus.manifest.get("counts", {})
    actual = {"identities": len(identities), "utterances": len(utterances), "faces": len(faces)}
    for key, n in actual.items():
        if key in manifest_counts and manifest_counts[key] != n:
            problems.append(f"manifest.json: counts.{key} = {manifest_counts[key]} but the table has {n}")

    if check_files:
        # an utterance without audio (an import of published features) needs its cached features
        paths = [corpus.path(u.audio) if u.audio else feature_path(corpus, u, "cmp_logmel") for u in utterances]
        paths += [corpus.path(p) for f in faces for p in (f.image_64, f.image_120)]
        missing = [str(p.relative_to(corpus.root)) for p in paths if not p.is_file()]
        if missing:
            problems.append(f"{len(missing)} file(s) named in the tables are missing, e.g. {missing[:3]}")
        damaged = damaged_features(corpus)
        if damaged:
            problems.append(f"{len(damaged)} cached feature file(s) are damaged, e.g. {damaged[:3]}; delete them "
                            "(training and evaluation compute them again from the audio)")
    return problems


def check_corpus(root: str | Path, check_files: bool = True) -> Corpus:
    """Open the corpus at ``root`` after validating it; VoxfaceError listing the problems otherwise."""
    problems = find_problems(root, check_files=check_files)
    if problems:
        listed = "\n  - ".join(problems[:MAX_LISTED])
        more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        raise VoxfaceError(f"corpus {root} failed validation:\n  - {listed}{more}")
    return Corpus(root)


def _orphans(table: str, referenced: list[str], known: set[str]) -> list[str]:
    unknown = sorted({r for r in referenced if r not in known})
    return [f"{table}: rows refer to unknown identities {unknown[:5]}"] if unknown else []


def _duplicates(table: str, keys: list[str]) -> list[str]:
    dupes = [k for k, n in Counter(keys).items() if n > 1]
    return [f"{table}: duplicate ids {dupes[:5]}"] if dupes else []


def _param_table(name: str, table: dict[str, np.ndarray], key: str, expected_keys: list[str],
                 n_shape: int, n_expression: int) -> list[str]:
    missing = [c for c in (key, "shape", "expression") if c not in table]
    if missing:
        return [f"{name}: missing array(s) {missing}"]
    problems = []
    if sorted(map(str, table[key])) != sorted(expected_keys):
        problems.append(f"{name}: its {key} ids differ from the {key} table")
    n = len(table[key])
    if table["shape"].shape != (n, n_shape):
        problems.append(f"{name}: shape has shape {table['shape'].shape}, expected ({n}, {n_shape}) "
                        "for this corpus's morphable model")
    if table["expression"].shape != (n, n_expression):
        problems.append(f"{name}: expression has shape {table['expression'].shape}, expected ({n}, {n_expression})")
    if not (np.isfinite(table["shape"]).all() and np.isfinite(table["expression"]).all()):
        problems.append(f"{name}: non-finite coefficients")
    return problems

"""Errors a user can cause end in one line naming the input and exit status 2, never a traceback."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from voxface.cli import main


def _run(argv: list[str], capsys) -> tuple[int, str]:
    """Exit status and stderr of ``voxface ARGV`` (argparse refusals exit through SystemExit)."""
    try:
        status = main(argv)
    except SystemExit as exit_:
        status = exit_.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return status, err


@pytest.mark.parametrize("command", [["model", "builtin"], ["synth", "--set", "identities=2", "--quiet"]])
def test_out_naming_an_existing_file_is_one_line(tmp_path, capsys, command):
    taken = tmp_path / "taken.txt"
    taken.write_text("a file, not a folder")
    status, err = _run(command + ["--out", str(taken)], capsys)
    assert status == 2 and f"{taken} is a file, not a folder" in err
    assert taken.read_text() == "a file, not a folder"


def test_predict_out_naming_an_existing_file_is_one_line(predictor_file, tiny_corpus_dir, tmp_path, capsys):
    taken = tmp_path / "taken.txt"
    taken.write_text("x")
    voice = str(next((tiny_corpus_dir / "audio").glob("*/*.wav")))
    status, err = _run(["predict", voice, "--checkpoint", str(predictor_file), "--out", str(taken)], capsys)
    assert status == 2 and f"{taken} is a file, not a folder" in err


@pytest.mark.parametrize("argv, option", [
    (["evaluate", "RUN", "--utterances", "0"], "--utterances"),
    (["serve", "--port", "70000"], "--port"),
    (["serve", "--max-upload-mb", "-5"], "--max-upload-mb"),
    (["serve", "--max-minutes", "0"], "--max-minutes"),
    (["shard", "CORPUS", "--out", "OUT", "--shard-mb", "0"], "--shard-mb"),
    (["predict", "x.wav", "--checkpoint", "C", "--out", "O", "--max-minutes", "-1"], "--max-minutes"),
])
def test_out_of_range_numbers_name_the_option(argv, option, capsys):
    status, err = _run(argv, capsys)
    assert status == 2 and f"argument {option}" in err and "must be" in err


def test_library_calls_check_the_same_ranges(tmp_path):
    from voxface.app.web import serve
    from voxface.corpus.sharded import pack_shards
    from voxface.errors import VoxfaceError
    from voxface.reports.voice_to_3d import evaluate_run

    with pytest.raises(VoxfaceError, match="--port 70000 must be <= 65535"):
        serve(tmp_path, port=70000, block=False)
    with pytest.raises(VoxfaceError, match="--utterances .* 0 must be >= 1"):
        evaluate_run(tmp_path, per_identity=0)
    with pytest.raises(VoxfaceError, match="--shard-mb .* 0 must be > 0"):
        pack_shards(lambda start: iter([]), [object()], tmp_path / "s", "cmp_logmel", shard_mb=0)
    assert not (tmp_path / "s").exists()


def test_a_damaged_generator_json_is_one_line(tiny_corpus_dir, tmp_path, capsys):
    out = tmp_path / "corpus"
    shutil.copytree(tiny_corpus_dir, out)
    (out / "generator.json").write_text('{"identities": 12, "utter')
    status, err = _run(["synth", "--out", str(out), "--quiet"], capsys)
    assert status == 2 and "generator.json is damaged" in err


@pytest.mark.parametrize("damage", ["drop regressor", "drop n_shape", "wrong weights"])
def test_a_predictor_missing_entries_is_one_line(predictor_file, tiny_corpus_dir, tmp_path, capsys, damage):
    bundle = torch.load(predictor_file, weights_only=True)
    if damage == "drop regressor":
        del bundle["networks"]["regressor"]
    elif damage == "drop n_shape":
        del bundle["networks"]["regressor"]["kwargs"]["n_shape"]
    else:
        bundle["networks"]["regressor"]["state_dict"] = {"head.weight": torch.zeros(1)}
    damaged = tmp_path / "predictor.pt"
    torch.save(bundle, damaged)
    voice = str(next((tiny_corpus_dir / "audio").glob("*/*.wav")))
    status, err = _run(["predict", voice, "--checkpoint", str(damaged), "--out", str(tmp_path / "o")], capsys)
    assert status == 2 and f"{damaged} cannot be used" in err and "damaged" in err


def test_when_every_file_failed_nothing_is_said_to_be_written(predictor_file, tmp_path, capsys):
    status, err = _run(["predict", str(tmp_path / "a.wav"), str(tmp_path / "b.wav"), "--checkpoint",
                        str(predictor_file), "--out", str(tmp_path / "out")], capsys)
    assert status == 2 and "2 of 2 file(s) failed" in err and "nothing was written" in err
    assert "the others were written" not in err


def test_a_failed_file_does_not_take_the_name_of_a_good_one(predictor_file, tiny_corpus_dir, tmp_path):
    from voxface.predictors.voice_to_3d import VoiceTo3D
    from voxface.workflows.predict import predict_files

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.wav").write_text("not audio")
    shutil.copy(next((tiny_corpus_dir / "audio").glob("*/*.wav")), tmp_path / "b" / "x.wav")
    outcomes = predict_files(VoiceTo3D.load(predictor_file), [str(tmp_path / "a" / "x.wav"),
                                                              str(tmp_path / "b" / "x.wav")], tmp_path / "out")
    assert outcomes[0].error and outcomes[1].outputs[0].endswith("x.obj")
    assert json.loads((tmp_path / "out" / "x.json").read_text())["source"] == str(tmp_path / "b" / "x.wav")

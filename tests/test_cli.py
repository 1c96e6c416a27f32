"""The command line: help, clear one-line errors without tracebacks, and the corpus commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from voxface.cli import build_parser, main


def test_every_command_has_help(capsys):
    commands = build_parser()._subparsers._group_actions[0].choices
    for name in commands:
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        assert "usage: voxface " + name in capsys.readouterr().out


def test_validate_reports_a_valid_corpus(tiny_corpus_dir, capsys):
    assert main(["validate", str(tiny_corpus_dir)]) == 0
    assert "valid voxface corpus" in capsys.readouterr().out


def test_user_error_is_one_line_without_traceback(tmp_path):
    """Run the installed entry point as a user would: exit 2, one line naming the folder."""
    voxface = Path(sys.executable).with_name("voxface")
    result = subprocess.run([str(voxface), "validate", str(tmp_path / "nowhere")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert str(tmp_path / "nowhere") in result.stderr
    assert "no manifest.json" in result.stderr


def test_bad_setting_is_refused(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "c"), "--set", "colour=blue"]) == 2
    assert "unknown SynthConfig setting 'colour'" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_model_command_describes_and_exports(tmp_path, capsys):
    assert main(["model", "builtin", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "builtin:" in out and "shape" in out
    assert (tmp_path / "builtin_mean.obj").stat().st_size > 1000
    assert (tmp_path / "builtin_mean.png").stat().st_size > 1000

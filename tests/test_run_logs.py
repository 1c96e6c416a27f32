"""Run folders: a resumed run keeps the metrics rows logged before it stopped; a run's config.yaml
can be given back as --config; a run's log and warning filters end with the run."""

from __future__ import annotations

import csv
from dataclasses import dataclass

from voxface.runs.config import build
from voxface.runs.trainer import AppendingCSVWriter


def test_a_resumed_run_appends_to_its_metrics_csv(tmp_path):
    first = AppendingCSVWriter(str(tmp_path))
    first.log_metrics({"loss": 1.0}, step=0)
    first.log_metrics({"loss": 0.5}, step=1)
    first.save()
    resumed = AppendingCSVWriter(str(tmp_path))  # a new process after the kill
    resumed.log_metrics({"loss": 0.25, "val/acc": 0.9}, step=2)
    resumed.save()
    with open(tmp_path / "metrics.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [r["step"] for r in rows] == ["0", "1", "2"]
    assert [r["loss"] for r in rows] == ["1.0", "0.5", "0.25"]
    assert rows[0]["val/acc"] == "" and rows[2]["val/acc"] == "0.9"


@dataclass
class _Settings:
    lr: float = 0.1
    steps: int = 3


def test_a_run_config_yaml_with_its_kind_is_a_valid_config_layer():
    assert build(_Settings, {"kind": "speaker", "steps": 7}) == _Settings(steps=7)


@dataclass
class _Run:
    lr: float = 0.1


def test_a_run_log_holds_only_its_own_run_and_its_warning_filters_end_with_it(tmp_path):
    import logging
    import warnings

    from voxface.runs.folder import run_folder

    log = logging.getLogger("voxface.test")
    logging.getLogger().setLevel(logging.DEBUG)
    before = list(logging.getLogger().handlers)
    with run_folder(tmp_path / "first", _Run(), "first"):
        log.info("inside the first run")
        warnings.filterwarnings("ignore", message="only while the first run lasts")
    log.info("between the runs")
    with run_folder(tmp_path / "second", _Run(), "second"):
        log.info("inside the second run")
    assert logging.getLogger().handlers == before
    first = (tmp_path / "first" / "train.log").read_text()
    assert "inside the first run" in first and "between" not in first and "second" not in first
    assert "inside the second run" in (tmp_path / "second" / "train.log").read_text()
    assert not any("only while the first run lasts" in str(f[1]) for f in warnings.filters)

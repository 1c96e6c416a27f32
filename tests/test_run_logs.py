"""Run folders: a resumed run keeps the metrics rows logged before it stopped; a run's config.yaml
can be given back as --config."""

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

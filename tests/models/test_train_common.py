"""ray_train.common without a cluster: MLflow tracking on object storage, the final-model export."""

from __future__ import annotations

from pathlib import Path

import pytest

from b2ner_common.config import TrainConfig
from ray_train.common import MlflowTracker, export_final, tracking_uri


def test_train_common_object_storage_without_tracking_server_tracks_nothing(capsys):
    # Outputs on s3:// with an empty tracking URI used to give MLflow s3://.../mlruns, which fails on rank 0.
    assert tracking_uri(TrainConfig(output_dir="s3://bucket/runs")) is None
    assert "train.tracking_uri" in capsys.readouterr().err
    assert tracking_uri(TrainConfig(output_dir="s3://bucket/runs", tracking_uri="http://mlflow:5000")) == (
        "http://mlflow:5000"
    )


def test_train_common_object_store_tracking_uri_fails_fast_naming_the_key():
    with pytest.raises(ValueError, match="train.tracking_uri"):
        tracking_uri(TrainConfig(tracking_uri="s3://bucket/mlruns"))


def test_train_common_mlflow_run_id_on_object_storage_resumes_the_same_run(tmp_path):
    store = (tmp_path / "mlruns").as_uri()
    id_file = (tmp_path / "bucket" / "run" / "mlflow_run_id").as_uri()  # a URI, as for s3:// run storage
    first = MlflowTracker(store, "b2ner-train", "r", id_file)
    again = MlflowTracker(store, "b2ner-train", "r", id_file)
    assert first.run_id and again.run_id == first.run_id


class _Checkpoint:
    def __init__(self, d: Path) -> None:
        self.path = str(d)
        self._d = d

    def as_directory(self):
        import contextlib

        return contextlib.nullcontext(str(self._d))


class _Result:
    def __init__(self, d: Path) -> None:
        self.checkpoint = _Checkpoint(d)


def test_train_common_final_adapter_exported_to_object_storage(tmp_path):
    ckpt = tmp_path / "ckpt"
    (ckpt / "adapter").mkdir(parents=True)
    (ckpt / "adapter" / "adapter_config.json").write_text("{}")
    rdir = (tmp_path / "bucket" / "runs" / "r").as_uri()
    out = export_final(_Result(ckpt), rdir, "adapter")
    assert out["adapter"] == rdir + "/adapter"
    assert (tmp_path / "bucket" / "runs" / "r" / "adapter" / "adapter_config.json").read_text() == "{}"

"""Pieces every Ray job shares: Ray start-up from `RayConfig` (Ray Train and the Ray Data predict engine),
run storage, the TorchTrainer launch and its final-model export, the worker-side phases every train loop
has (read the shard, rank-0 tracking, report with a checkpoint), MLflow tracking.

Generic on purpose (the LLM SFT job and the span-encoder job both use it): nothing here knows about
a model family. Import cost matters (`b2ner --help` must stay fast): ray and mlflow are imported
inside the functions.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from b2ner_common.config import PipelineConfig, RayConfig, TrainConfig

# Environment the driver passes to every Ray worker: offline hubs, CPU DeepSpeed, quiet tokenizers.
# Only variables already set in the driver are forwarded (a cluster may set its own).
WORKER_ENV_VARS = (
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_HOME",
    "DS_ACCELERATOR",
    "TOKENIZERS_PARALLELISM",
    "MLFLOW_ALLOW_FILE_STORE",
    "B2NER_FAIL_ONCE",  # failure injection for the resume test (see ray_train.train_llm)
)


def worker_env() -> dict[str, str]:
    """The driver's values of WORKER_ENV_VARS, for `runtime_env={"env_vars": ...}`."""
    return {k: os.environ[k] for k in WORKER_ENV_VARS if k in os.environ}


def init_ray(cfg: RayConfig, log_to_driver: bool | None = None) -> bool:
    """Start (or join) Ray as `cfg` says; a no-op when Ray is already initialized in this process.

    `address=None` starts a local Ray with `num_cpus`; "auto" or "ray://head:10001" joins a cluster.
    Returns whether this call started Ray (so the caller knows whether to shut it down).
    """
    import ray
    import ray.data

    ray.data.DataContext.get_current().enable_progress_bars = cfg.progress_bars
    if ray.is_initialized():
        return False
    # Ray's token authentication stays on (its default for local clusters: ~/.ray/auth_token), and a local
    # Ray listens on loopback only (`_loopback_node`, docs/reliability.md).
    # Ray runs its workers at nice 15, so on a busy host training gets a few % of a core behind any other
    # process. Forcing RAY_worker_niceness=0 made the second Ray Train fit of a process hang (twice, at
    # "Requesting resources"), so Ray's default is kept; set the variable yourself on a dedicated host.
    kwargs: dict[str, Any] = {
        "ignore_reinit_error": True,
        "include_dashboard": False,
        "log_to_driver": cfg.log_to_driver if log_to_driver is None else log_to_driver,
    }
    env = worker_env()
    if env:
        kwargs["runtime_env"] = {"env_vars": env}
    if cfg.address:
        kwargs["address"] = cfg.address
    elif cfg.num_cpus:
        kwargs["num_cpus"] = cfg.num_cpus
    if not kwargs["log_to_driver"]:
        # Driver-side Ray loggers at warning level: their info lines (reports, cleaners) are not progress.
        for name in ("ray", "ray.train", "ray.data", "ray.tune"):
            logging.getLogger(name).setLevel(logging.WARNING)
    # The embedded default only: a cluster (ray.address, or RAY_ADDRESS that ray.init reads) is joined as is.
    local = not cfg.address and not os.environ.get("RAY_ADDRESS")
    with _loopback_node() if local else nullcontext():
        ray.init(**kwargs)
    return True


@contextmanager
def _loopback_node() -> Iterator[None]:
    """While Ray starts a local node: give it node address 127.0.0.1, so every Ray server listens on loopback.

    Ray 2.60 picks the listening address of its servers (gcs, raylet, workers, runtime-env and dashboard
    agents) from the node address: a loopback one gives loopback only, any other every interface. Its
    ray.init, though, replaces 127.0.0.1 (also `_node_ip_address="127.0.0.1"`) by the machine's address
    unless its single-host switch is off (`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`, the default on macOS and
    Windows). Ray reads that variable once, at import, so the switch itself is turned off here, and only
    while the node starts: the running node keeps its address, and joining a cluster later is untouched.
    """
    from ray._private import ray_constants

    if not hasattr(ray_constants, "ENABLE_RAY_CLUSTER"):
        # A Ray without the switch: the node gets the machine's address (the loopback test says so).
        logging.getLogger(__name__).warning(
            "this Ray has no single-host switch: it may listen beyond loopback"
        )
        yield
        return
    saved = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved


def storage_path(train: TrainConfig) -> str:
    """Absolute run storage root (`train.output_dir`); URIs (s3://, gs://) pass through unchanged.

    Ray Train keeps checkpoints under `<storage_path>/<run_name>/`; re-launching with the same
    storage path and run name resumes from the latest checkpoint found there.
    """
    out = train.output_dir
    if "://" in out:
        return out
    p = Path(out).expanduser().resolve()
    p.mkdir(parents=True, exist_ok=True)
    return str(p)


def run_dir(train: TrainConfig) -> str:
    """`<storage_path>/<run_name>`: where a run's checkpoints, final model and tracking ids live."""
    root = storage_path(train)
    return f"{root.rstrip('/')}/{train.run_name}" if "://" in root else str(Path(root) / train.run_name)


def make_run_config(train: TrainConfig, *, max_failures: int = 0, num_to_keep: int | None = 2):
    """A `ray.train.RunConfig` with storage, run name, failure retries and checkpoint retention."""
    import ray.train

    return ray.train.RunConfig(
        name=train.run_name,
        storage_path=storage_path(train),
        failure_config=ray.train.FailureConfig(max_failures=max_failures),
        checkpoint_config=ray.train.CheckpointConfig(num_to_keep=num_to_keep),
    )


def fit(
    train_loop: Callable[[dict[str, Any]], None],
    cfg: PipelineConfig,
    table: Any,
    *,
    loop_config: Mapping[str, Any] | None = None,
    use_gpu: bool = False,
    max_failures: int = 0,
    num_to_keep: int | None = 2,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
):
    """Run `train_loop` on `train.num_workers` TorchTrainer workers over the Arrow `table` of training rows.

    Every worker gets the whole (small, selected) table as dataset "train" and takes its rank's share
    itself: deterministic batches on any worker count, exact replay after a resume. The loop config holds
    "cfg" (the resolved config as JSON), "run_dir", "tracking_uri" and `loop_config`. Returns
    (ray.train.Result, run_dir); raises the training error. `on_progress` gets rank 0's
    {step, total, loss, samples, samples_per_s} about once a second (ray_train.progress).
    """
    import ray.data
    from ray.train import DataConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    tc = cfg.train
    init_ray(cfg.ray)
    rdir = run_dir(tc)
    trainer = TorchTrainer(
        train_loop,
        train_loop_config={
            "cfg": cfg.model_dump(mode="json"),
            "run_dir": rdir,
            "tracking_uri": tracking_uri(tc),
            **(loop_config or {}),
        },
        scaling_config=ScalingConfig(num_workers=tc.num_workers, use_gpu=use_gpu),
        run_config=make_run_config(tc, max_failures=max_failures, num_to_keep=num_to_keep),
        # Materialized on the driver: once the training workers hold every CPU of a small cluster no
        # read task could be scheduled any more (a deadlock on a 2-CPU machine).
        datasets={"train": ray.data.from_arrow(table).materialize()},
        dataset_config=DataConfig(datasets_to_split=[]),
    )
    from ray_train.progress import watch_training

    with watch_training(tc.run_name, on_progress):
        result = trainer.fit()
    if result.error:
        raise result.error
    return result, rdir


def export_final(result: Any, rdir: str, name: str) -> dict[str, str]:
    """Copy folder `name` of the last checkpoint to `<run_dir>/<name>`, on local disk or object storage
    (`b2ner predict model.path=s3://.../<run_name>/adapter` then downloads it once per machine).

    Returns the summary entries: {name: the copy} when the checkpoint had it, {"checkpoint": its path}.
    """
    from b2ner_common.storage import upload_dir

    out: dict[str, str] = {}
    if result.checkpoint is None:
        return out
    final = f"{rdir.rstrip('/')}/{name}" if "://" in rdir else str(Path(rdir) / name)
    with result.checkpoint.as_directory() as d:
        src = Path(d) / name
        if src.is_dir():
            out[name] = upload_dir(src, final)
    out["checkpoint"] = result.checkpoint.path
    return out


# ------------------------------------------------------------------------ worker-side phases (in train_loop)


def shard_table(name: str = "train"):
    """This worker's dataset `name` as one Arrow table (every worker gets all rows, see `fit`)."""
    import pyarrow as pa
    import ray.train

    shard = ray.train.get_dataset_shard(name)
    return pa.concat_tables(list(shard.iter_batches(batch_format="pyarrow", batch_size=4096)))


def rank0_tracker(
    config: Mapping[str, Any], cfg: PipelineConfig, rank: int, world: int, **params: Any
) -> MlflowTracker | None:
    """The run's MLflow tracker on rank 0 (None elsewhere), with the train/model config, the world size
    and `params` logged. The run id lives in `<run_dir>/mlflow_run_id`: a resumed run logs into the same run."""
    if rank != 0:
        return None
    rdir = config["run_dir"]
    # On any storage: a resumed driver (local or s3://) continues the same MLflow run.
    id_file = f"{rdir.rstrip('/')}/mlflow_run_id" if "://" in rdir else str(Path(rdir) / "mlflow_run_id")
    tracker = MlflowTracker(config["tracking_uri"], "b2ner-train", cfg.train.run_name, id_file)
    tracker.log_params(
        {
            "train": cfg.train.model_dump(mode="json"),
            "model": cfg.model.model_dump(mode="json"),
            "world_size": world,
            **params,
        }
    )
    return tracker


def report_with_checkpoint(metrics: Mapping[str, Any], write: Callable[[Path], None]) -> None:
    """`ray.train.report(metrics)` with a checkpoint of what `write(folder)` puts in a fresh folder (called
    on every rank: collective saves such as DeepSpeed's need all of them; ranks that write nothing report
    no checkpoint)."""
    import ray.train

    with tempfile.TemporaryDirectory() as d:
        write(Path(d))
        has_files = any(Path(d).iterdir())
        ray.train.report(
            dict(metrics), checkpoint=ray.train.Checkpoint.from_directory(d) if has_files else None
        )


# --------------------------------------------------------------------------------------------- MLflow


def tracking_uri(train: TrainConfig) -> str | None:
    """The MLflow tracking URI: `train.tracking_uri`, or a file store under the run storage by default.

    "off" disables tracking (returns None). The file store needs MLFLOW_ALLOW_FILE_STORE=true with
    MLflow >= 3.x (it is in maintenance mode; a database store would need sqlalchemy, which
    mlflow-skinny does not ship); `MlflowTracker` sets it for file URIs.
    """
    uri = train.tracking_uri.strip()
    if uri.lower() == "off":
        return None
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if scheme in OBJECT_STORE_SCHEMES:
        # MLflow cannot keep runs on object storage (UnsupportedModelRegistryStoreURIException on every
        # retry, on rank 0, after the cluster is up): say so on the driver, before anything starts.
        raise ValueError(
            f"train.tracking_uri={uri!r}: MLflow cannot use object storage as its tracking store; set "
            "train.tracking_uri to a tracking server (http://mlflow:5000) or 'off'"
        )
    if uri:
        return uri
    root = storage_path(train)
    if "://" in root:
        print(
            f"MLflow tracking off: run storage {root} is object storage and train.tracking_uri is empty "
            "(set it to a tracking server, http://..., to track this run)",
            file=sys.stderr,
        )
        return None
    return Path(root, "mlruns").as_uri()


OBJECT_STORE_SCHEMES = frozenset({"s3", "s3a", "gs", "gcs", "abfs", "abfss", "az", "wasb", "wasbs", "hdfs"})


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config dict -> {"a.b": "value"} strings (MLflow params are flat strings <= 6000 chars)."""
    out: dict[str, str] = {}
    for k, v in params.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        else:
            out[key] = (json.dumps(v) if isinstance(v, list | tuple) else str(v))[:6000]
    return out


class MlflowTracker:
    """Small MLflow wrapper used on rank 0: one run per training run, resumed by id after a restart.

    The run id is stored in `<run_dir>/mlflow_run_id` so a restarted driver (or a retried worker
    group) keeps logging into the same MLflow run instead of opening a new one.
    Disabled (every method a no-op) when `uri` is None.
    """

    def __init__(self, uri: str | None, experiment: str, run_name: str, id_file: str | None = None) -> None:
        self.enabled = uri is not None
        self.run_id: str | None = None
        if not self.enabled:
            return
        if uri.startswith("file:") or "://" not in uri:
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=uri)
        exp = self.client.get_experiment_by_name(experiment)
        exp_id = exp.experiment_id if exp else self.client.create_experiment(experiment)
        from b2ner_common.storage import read_text, write_text

        existing = (read_text(id_file) or "").strip() if id_file else ""
        if existing:
            self.run_id = existing
        else:
            self.run_id = self.client.create_run(exp_id, run_name=run_name).info.run_id
            if id_file:
                write_text(id_file, self.run_id)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log a (nested) config once; params already logged with the same value are skipped."""
        if not self.enabled:
            return
        from mlflow.entities import Param

        logged = self.client.get_run(self.run_id).data.params
        flat = {k: v for k, v in flatten(params).items() if k not in logged}
        items = list(flat.items())
        for i in range(0, len(items), 100):  # MLflow caps a batch at 100 params
            self.client.log_batch(self.run_id, params=[Param(k, v) for k, v in items[i : i + 100]])

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        if not self.enabled:
            return
        import time

        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        rows = [Metric(k, float(v), ts, step) for k, v in metrics.items() if isinstance(v, int | float)]
        if rows:
            self.client.log_batch(self.run_id, metrics=rows)

    def finish(self, status: str = "FINISHED") -> None:
        if self.enabled:
            self.client.set_terminated(self.run_id, status=status)

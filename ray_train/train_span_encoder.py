"""`b2ner train` with `model.family: span-encoder`: the CPU open-NER model, trained with Ray Train.

The whole job: read the training rows (gold/selection joined with silver/samples, or silver with a cap:
`b2ner_common.selection.training_rows`), hand them to `train.num_workers` TorchTrainer workers as a Ray Dataset (every
worker gets all rows and trains on its rank's share: deterministic on any worker count), run
`b2ner_common.models.span_encoder.train.SpanTrainer`, checkpoint every `train.checkpoint_every` steps (model directory +
optimizer state), log to MLflow on rank 0, and copy the final model to `<output_dir>/<run_name>/model`.

Resume: running the same command again (same `train.output_dir` + `train.run_name`) continues from the
latest checkpoint; a finished run is not trained again.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from b2ner_common.config import PipelineConfig

STATE_FILE = "trainer_state.pt"
MODEL_DIR = "model"


def options_from_config(cfg: PipelineConfig, total_steps: int):
    """SpanTrainOptions from `train` / `train.span`."""
    from b2ner_common.models.span_encoder.train import SpanTrainOptions

    s = cfg.train.span
    return SpanTrainOptions(
        batch_size=s.batch_size,
        steps=total_steps,
        lr_encoder=s.lr_encoder,
        lr_head=s.lr_head,
        weight_decay=cfg.train.weight_decay,
        max_labels=s.max_labels,
        pool_negatives=s.pool_negatives,
        drop_positive=s.drop_positive,
        focal_gamma=s.focal_gamma,
        positive_weight=s.positive_weight,
        label_field=s.label_field,
        seed=cfg.train.seed,
    )


def total_steps(cfg: PipelineConfig, n_examples: int, world: int) -> int:
    """train.max_steps, else train.epochs passes over the examples at batch_size x workers per step."""
    if cfg.train.max_steps:
        return cfg.train.max_steps
    per_step = cfg.train.span.batch_size * world
    return max(1, cfg.train.epochs * -(-n_examples // per_step))


def train_loop(config: dict[str, Any]) -> None:
    """Runs on every Ray Train worker."""
    import pyarrow as pa
    import ray.train
    import ray.train.torch
    import torch
    from safetensors.torch import load_file

    from b2ner_common.models.span_encoder.model import (
        WEIGHTS_FILE,
        build_span_encoder,
        save_span_encoder,
        settings_from_config,
    )
    from b2ner_common.models.span_encoder.train import SpanTrainer, examples_from_rows, taxonomy_namer
    from ray_train.common import MlflowTracker

    cfg = PipelineConfig.model_validate(config["cfg"])
    tc = cfg.train
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    torch.set_num_threads(tc.span.threads_per_worker or max(1, (os.cpu_count() or 2) // world))

    shard = ray.train.get_dataset_shard("train")
    rows = pa.concat_tables(list(shard.iter_batches(batch_format="pyarrow", batch_size=4096))).to_pylist()
    # Same seed on every rank: identical initial heads (DDP also broadcasts rank 0's weights).
    model = build_span_encoder(cfg.model.base_model, settings_from_config(cfg.model.span), seed=tc.seed)
    examples, stats = examples_from_rows(
        rows, model, tc.span.label_field, taxonomy_namer(cfg.taxonomy.version)
    )
    mine = examples[rank::world]
    steps = total_steps(cfg, len(examples), world)
    # Some parameters (e.g. a bias of a branch a batch does not reach) get no gradient in a step:
    # DDP must be told, or it stops at the second step waiting for their reduction.
    forward_model = (
        ray.train.torch.prepare_model(
            model, move_to_device=False, parallel_strategy_kwargs={"find_unused_parameters": True}
        )
        if world > 1
        else model
    )
    trainer = SpanTrainer(model, mine, options_from_config(cfg, steps), forward_model=forward_model)

    ckpt = ray.train.get_checkpoint()
    if ckpt:
        with ckpt.as_directory() as d:
            model.load_state_dict(load_file(str(Path(d) / MODEL_DIR / WEIGHTS_FILE)))
            trainer.load_state_dict(torch.load(Path(d) / STATE_FILE, weights_only=False))
    start = trainer.step

    tracker = None
    if rank == 0:
        id_file = str(Path(config["run_dir"]) / "mlflow_run_id") if "://" not in config["run_dir"] else None
        tracker = MlflowTracker(config["tracking_uri"], "b2ner-train", tc.run_name, id_file)
        tracker.log_params(
            {
                "train": tc.model_dump(mode="json"),
                "model": cfg.model.model_dump(mode="json"),
                "world_size": world,
                "train_rows": len(rows),
                "train_segments": len(examples),
                "entities_skipped": stats.skipped_unaligned_or_wide + stats.skipped_unlabelled,
            }
        )

    def report(metrics: dict, checkpoint: bool) -> None:
        if not checkpoint:
            ray.train.report(metrics)
            return
        with tempfile.TemporaryDirectory() as d:
            if rank == 0:
                save_span_encoder(model, Path(d) / MODEL_DIR)
                torch.save(trainer.state_dict(), Path(d) / STATE_FILE)
            has_files = any(Path(d).iterdir())
            ray.train.report(
                metrics, checkpoint=ray.train.Checkpoint.from_directory(d) if has_files else None
            )

    window: list[float] = []
    t0, seen0 = time.perf_counter(), trainer.samples_seen
    metrics: dict[str, Any] = {"step": start}
    while trainer.step < steps:
        res = trainer.fit(steps=min(steps, (trainer.step // tc.report_every + 1) * tc.report_every))
        window.extend(res["losses"])
        done = trainer.step
        elapsed = time.perf_counter() - t0
        metrics = {
            "step": done,
            "loss": sum(window) / max(len(window), 1),
            "samples_per_s": (trainer.samples_seen - seen0) * world / max(elapsed, 1e-9),
            "lr_encoder": trainer.scheduler.get_last_lr()[0],
            "start_step": start,  # > 0 when this launch resumed from a checkpoint
        }
        if tracker:
            tracker.log_metrics(metrics, step=done)
        window, t0, seen0 = [], time.perf_counter(), trainer.samples_seen
        report(metrics, checkpoint=done % tc.checkpoint_every == 0 or done >= steps)
    if start >= steps:  # a finished run launched again: nothing to train, keep the last checkpoint
        ray.train.report({"step": start, "already_done": 1})
    if tracker:
        tracker.finish()


def train_span_encoder(cfg: PipelineConfig) -> dict[str, Any]:
    """Fit (or resume) a span-encoder run; returns a summary with the final model directory.

    Raises FileNotFoundError when the warehouse tables the config names are missing.
    """
    import ray.data
    from ray.train import DataConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from b2ner_common.selection.training_rows import training_table
    from ray_train.common import init_ray, make_run_config, run_dir, tracking_uri

    tc = cfg.train
    table = training_table(cfg)
    if table.num_rows == 0:
        raise ValueError("no training rows: check train.span.source / the selection run / select.splits")
    init_ray(cfg.ray)
    rdir = run_dir(tc)
    trainer = TorchTrainer(
        train_loop,
        train_loop_config={
            "cfg": cfg.model_dump(mode="json"),
            "run_dir": rdir,
            "tracking_uri": tracking_uri(tc),
        },
        scaling_config=ScalingConfig(num_workers=tc.num_workers, use_gpu=False),
        run_config=make_run_config(tc, max_failures=0, num_to_keep=2),
        datasets={"train": ray.data.from_arrow(table)},
        dataset_config=DataConfig(datasets_to_split=[]),
    )
    t0 = time.perf_counter()
    result = trainer.fit()
    if result.error:
        raise result.error
    summary: dict[str, Any] = {
        "run_dir": rdir,
        "train_rows": table.num_rows,
        "seconds": round(time.perf_counter() - t0, 1),
        "metrics": result.metrics or {},
    }
    if result.checkpoint is not None and "://" not in rdir:
        final = Path(rdir) / MODEL_DIR
        with result.checkpoint.as_directory() as d:
            if (Path(d) / MODEL_DIR).is_dir():
                if final.exists():
                    shutil.rmtree(final)
                shutil.copytree(Path(d) / MODEL_DIR, final)
                summary["model"] = str(final)
        summary["checkpoint"] = result.checkpoint.path
    return summary

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
import time
from pathlib import Path
from typing import Any

from b2ner_common.config import PipelineConfig
from ray_train.common import export_final, fit, rank0_tracker, report_with_checkpoint, shard_table
from ray_train.progress import StepReporter

STATE_FILE = "trainer_state.pt"
MODEL_DIR = "model"


def total_steps(cfg: PipelineConfig, n_examples: int, world: int) -> int:
    """train.max_steps, else train.epochs passes over the examples at batch_size x workers per step."""
    if cfg.train.max_steps:
        return cfg.train.max_steps
    per_step = cfg.train.span.batch_size * world
    return max(1, cfg.train.epochs * -(-n_examples // per_step))


def agree_min(world: int):
    """Data-parallel ranks must stop at the same step: every rank takes the smallest planned step count."""
    if world <= 1:
        return None
    import torch
    import torch.distributed as dist

    def agree(total: int) -> int:
        t = torch.tensor([total], dtype=torch.long)
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        return int(t.item())

    return agree


class SpanEncoderRecipe:
    """One worker's run, in named phases as in torchtune's recipes: `setup` (model, data, backend, restore,
    tracking), `train` (the loop), `save_and_report`, `cleanup`."""

    def __init__(self, config: dict[str, Any]) -> None:
        import ray.train

        self.config = config
        self.cfg = PipelineConfig.model_validate(config["cfg"])
        ctx = ray.train.get_context()
        self.rank, self.world = ctx.get_world_rank(), ctx.get_world_size()

    def setup(self) -> None:
        import torch

        tc = self.cfg.train
        torch.set_num_threads(tc.span.threads_per_worker or max(1, (os.cpu_count() or 2) // self.world))
        self._setup_model()
        self._setup_data()
        self._setup_backend()
        self._restore()
        self.progress = StepReporter(self.cfg.train.run_name) if self.rank == 0 else None
        self.tracker = rank0_tracker(
            self.config,
            self.cfg,
            self.rank,
            self.world,
            train_rows=self.n_rows,
            train_segments=self.n_examples,
            entities_skipped=self.stats.skipped_unaligned_or_wide + self.stats.skipped_unlabelled,
        )

    def _setup_model(self) -> None:
        from b2ner_common.models.span_encoder.model import build_span_encoder, settings_from_config

        # Same seed on every rank: identical initial heads (DDP also broadcasts rank 0's weights).
        self.model = build_span_encoder(
            self.cfg.model.base_model, settings_from_config(self.cfg.model.span), seed=self.cfg.train.seed
        )

    def _setup_data(self) -> None:
        from b2ner_common.models.span_encoder.train import examples_from_rows
        from b2ner_common.taxonomy import load_taxonomy

        rows = shard_table().to_pylist()
        namer = load_taxonomy(self.cfg.taxonomy.version).label_namer()
        examples, self.stats = examples_from_rows(rows, self.model, self.cfg.train.span.label_field, namer)
        self.n_rows, self.n_examples = len(rows), len(examples)
        self.examples = examples[self.rank :: self.world]
        self.steps = total_steps(self.cfg, len(examples), self.world)

    def _setup_backend(self) -> None:
        import ray.train.torch

        from b2ner_common.models.span_encoder.train import SpanTrainer, SpanTrainOptions

        # Some parameters (e.g. a bias of a branch a batch does not reach) get no gradient in a step:
        # DDP must be told, or it stops at the second step waiting for their reduction.
        forward_model = (
            ray.train.torch.prepare_model(
                self.model, move_to_device=False, parallel_strategy_kwargs={"find_unused_parameters": True}
            )
            if self.world > 1
            else self.model
        )
        opts = SpanTrainOptions.from_config(self.cfg, self.steps)
        self.trainer = SpanTrainer(self.model, self.examples, opts, forward_model=forward_model)

    def _restore(self) -> None:
        import ray.train
        import torch
        from safetensors.torch import load_file

        from b2ner_common.models.span_encoder.model import WEIGHTS_FILE

        ckpt = ray.train.get_checkpoint()
        if ckpt:
            with ckpt.as_directory() as d:
                self.model.load_state_dict(load_file(str(Path(d) / MODEL_DIR / WEIGHTS_FILE)))
                self.trainer.load_state_dict(torch.load(Path(d) / STATE_FILE, weights_only=True))
        self.start = self.trainer.step

    def train(self) -> None:
        import ray.train

        tc, trainer, start = self.cfg.train, self.trainer, self.start
        window: list[float] = []
        t0, seen0 = time.perf_counter(), trainer.samples_seen
        agree = agree_min(self.world)  # a time budget's plan: every rank stops at the same step
        while not trainer.done:
            res = trainer.fit(
                steps=(trainer.step // tc.report_every + 1) * tc.report_every,
                on_step=self._on_step,
                agree=agree,
            )
            window.extend(res["losses"])
            done = trainer.step
            elapsed = time.perf_counter() - t0
            metrics = {
                "step": done,
                "loss": sum(window) / max(len(window), 1),
                "samples_per_s": (trainer.samples_seen - seen0) * self.world / max(elapsed, 1e-9),
                "lr_encoder": trainer.scheduler.get_last_lr()[0],
                "planned_steps": trainer.total_steps,
                "train_minutes": trainer.train_seconds / 60,
                "start_step": start,  # > 0 when this launch resumed from a checkpoint
            }
            if self.tracker:
                self.tracker.log_metrics(metrics, step=done)
            window, t0, seen0 = [], time.perf_counter(), trainer.samples_seen
            if done % tc.checkpoint_every == 0 or trainer.done:
                self.save_and_report(metrics)
            else:
                ray.train.report(metrics)
        if start >= trainer.total_steps:  # a finished run launched again: keep the last checkpoint
            ray.train.report({"step": start, "already_done": 1})

    def _on_step(self, step: int, loss: float) -> None:
        if self.progress is not None:
            self.progress.step(step, self.trainer.total_steps, loss, self.trainer.samples_seen * self.world)

    def save_and_report(self, metrics: dict[str, Any]) -> None:
        """Report `metrics` with a checkpoint: the model directory + the trainer state, written by rank 0."""
        import torch

        from b2ner_common.models.span_encoder.model import save_span_encoder

        def write(d: Path) -> None:
            if self.rank == 0:
                save_span_encoder(self.model, d / MODEL_DIR)
                torch.save(self.trainer.state_dict(), d / STATE_FILE)

        report_with_checkpoint(metrics, write)

    def cleanup(self) -> None:
        if self.tracker:
            self.tracker.finish()


def train_loop(config: dict[str, Any]) -> None:
    """Runs on every Ray Train worker."""
    recipe = SpanEncoderRecipe(config)
    recipe.setup()
    recipe.train()
    recipe.cleanup()


def train_span_encoder(cfg: PipelineConfig, on_progress=None) -> dict[str, Any]:
    """Fit (or resume) a span-encoder run; returns a summary with the final model directory.

    Raises FileNotFoundError when the warehouse tables the config names are missing.
    """
    from b2ner_common.selection.training_rows import training_table

    table = training_table(cfg)
    if table.num_rows == 0:
        raise ValueError("no training rows: check train.span.source / train.selection_run / select.splits")
    t0 = time.perf_counter()
    result, rdir = fit(train_loop, cfg, table, on_progress=on_progress)
    return {
        "run_dir": rdir,
        "train_rows": table.num_rows,
        "seconds": round(time.perf_counter() - t0, 1),
        "metrics": result.metrics or {},
        **export_final(result, rdir, MODEL_DIR),
    }

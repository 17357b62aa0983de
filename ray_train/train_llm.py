"""`b2ner train` with `model.family: llm`: LoRA SFT of a causal LM with Ray Train (+ DeepSpeed ZeRO).

The whole job: read the training rows (`b2ner_common.selection.training_rows`: the selection run
`train.selection_run` joined with silver/samples, eval-leak guard included), run `train_loop` (the phases
of `SFTRecipe`) on `train.num_workers` workers (CPU or GPU), copy the final adapter out of the last
checkpoint. Data encoding, packing, loss and steps live in `b2ner_common.models.llm.sft_*` (tested without Ray).

Resume: worker failures restart the worker group from the latest checkpoint (`train.llm.max_failures`);
running the same command again (same `train.output_dir` + `train.run_name`) resumes a stopped driver
from the latest checkpoint in `<output_dir>/<run_name>/`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from b2ner_common import tables
from b2ner_common.config import PROJECT_ROOT, PipelineConfig
from b2ner_common.tables import Table
from ray_train.common import export_final, fit, rank0_tracker, report_with_checkpoint, shard_table
from ray_train.progress import StepReporter

FAIL_ENV = "B2NER_FAIL_ONCE"  # "<marker file>:<step>": the last worker dies once at that step (tests)


# ------------------------------------------------------------------------------------------ data


def eval_rows(cfg: PipelineConfig) -> list[dict]:
    """A few silver rows per eval dataset (split dev, else test), read on the driver (small)."""
    llm = cfg.train.llm
    if not llm.eval_datasets:
        return []
    path = tables.table_path(cfg.warehouse, Table.SILVER_SAMPLES)
    t = tables.read_table(
        path, columns=["sample_id", "dataset", "split", "lang", "text", "entities", "label_set"]
    )
    out: list[dict] = []
    for name in llm.eval_datasets:
        d = t.filter(pc.equal(t["dataset"], name))
        splits = set(d["split"].to_pylist())
        split = "dev" if "dev" in splits else "test"
        d = d.filter(pc.equal(d["split"], split))
        d = d.take(pc.sort_indices(d, [("sample_id", "ascending")]))
        out.extend(d.slice(0, llm.eval_max_samples).to_pylist())
    return out


# ------------------------------------------------------------------------------------ deepspeed


def deepspeed_config(
    name: str, *, micro_batch_size: int, world: int, bf16: bool, max_grad_norm: float
) -> dict:
    """Load configs/deepspeed/<name>.json (or a JSON path) and fill the run-dependent fields."""
    p = Path(name)
    if not p.suffix:
        p = PROJECT_ROOT / "configs" / "deepspeed" / f"{name}.json"
    if not p.is_file():
        raise FileNotFoundError(
            f"DeepSpeed config {p} not found (train.llm.deepspeed: zero2, zero3 or a JSON path)"
        )
    conf = json.loads(p.read_text())
    conf["train_micro_batch_size_per_gpu"] = micro_batch_size
    # Accumulation is driven per step by the plan (set_gradient_accumulation_boundary); these only
    # have to be consistent for DeepSpeed's own bookkeeping.
    conf["gradient_accumulation_steps"] = 1
    conf["train_batch_size"] = micro_batch_size * world
    conf["gradient_clipping"] = max_grad_norm
    conf["bf16"] = {"enabled": bool(bf16)}
    return conf


# ------------------------------------------------------------------------------------ train loop


def _maybe_fail(spec: str, step: int, rank: int, world: int) -> None:
    if not spec or rank != world - 1:
        return
    marker, _, at = spec.rpartition(":")
    if step == int(at) and not Path(marker).exists():
        Path(marker).write_text(f"worker {rank} killed at step {step}\n")
        # Ray Train V2 collects reported results when it polls the workers (every 2 s): a checkpoint
        # reported less than one poll before a crash is lost and the previous one is used. Wait past
        # a poll so the test exercises "resume from the latest checkpoint", not that race.
        time.sleep(5)
        os._exit(1)  # a hard crash, like an OOM kill or a lost node


def _all_reduce_sum(values: list[float]) -> list[float]:
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


class SFTRecipe:
    """One worker's LoRA SFT run, in named phases as in torchtune's recipes: `setup` (data, model, backend,
    restore, tracking), `train` (the loop), `save_and_report`, `cleanup`."""

    def __init__(self, config: dict[str, Any]) -> None:
        import ray.train

        self.config = config
        self.cfg = PipelineConfig.model_validate(config["cfg"])
        self.tc, self.llm = self.cfg.train, self.cfg.train.llm
        ctx = ray.train.get_context()
        self.rank, self.world = ctx.get_world_rank(), ctx.get_world_size()

    def setup(self) -> None:
        self._setup_data()
        self._setup_model()
        self._setup_backend()
        self._restore()
        self.tracker = rank0_tracker(self.config, self.cfg, self.rank, self.world, train_rows=len(self.rows))
        self.progress = StepReporter(self.cfg.train.run_name) if self.rank == 0 else None

    def _setup_data(self) -> None:
        from b2ner_common.models.llm.sft_data import rows_from_arrow, steps_per_epoch
        from b2ner_common.taxonomy import load_taxonomy

        self.rows = rows_from_arrow(shard_table())
        self.spe = steps_per_epoch(len(self.rows), self.tc.global_batch_size)
        self.total = self.tc.max_steps or self.tc.epochs * self.spe
        tax = load_taxonomy(self.cfg.taxonomy.version)
        self.namer = tax.label_namer()
        self.defs = (
            {lang: tax.definitions(lang) for lang in ("en", "zh")} if self.llm.use_definitions else None
        )

    def _setup_model(self) -> None:
        import ray.train.torch
        import torch

        from b2ner_common.models.llm.predictor import resolve_model_dirs
        from b2ner_common.models.llm.sft_loop import check_packing, load_base, wrap_lora

        llm = self.llm
        base_dir, adapter_dir = resolve_model_dirs(self.cfg.model.path, self.cfg.model.base_model)
        adapter_dir = Path(llm.adapter) if llm.adapter else adapter_dir
        model, self.tok = load_base(
            base_dir,
            bf16=llm.bf16,
            adapter_dir=adapter_dir,
            trust_remote_code=self.cfg.model.trust_remote_code,
        )
        torch.manual_seed(
            self.tc.seed
        )  # LoRA A init: the same on every run (DDP/DeepSpeed broadcast rank 0's)
        self.model = wrap_lora(
            model,
            r=llm.lora_r,
            alpha=llm.lora_alpha,
            dropout=llm.lora_dropout,
            target_modules=llm.target_modules,
            adapter_dir=adapter_dir,
            gradient_checkpointing=llm.gradient_checkpointing,
            lora_targets=llm.lora_targets,
        )
        self.model.to(ray.train.torch.get_device())
        if llm.packing:
            check_packing(self.model)  # stops here, naming train.llm.packing=false, where packing is unsafe

    def _setup_backend(self) -> None:
        """The optimizer and the backend that steps it: DeepSpeed (train.llm.deepspeed) or plain torch/DDP."""
        import ray.train.torch

        from b2ner_common.models.llm.sft_loop import DeepSpeedBackend, TorchBackend, make_optimizer

        tc, llm = self.tc, self.llm
        opt, sched = make_optimizer(
            self.model,
            lr=tc.lr,
            betas=llm.betas,
            weight_decay=tc.weight_decay,
            total_steps=self.total,
            warmup_ratio=llm.warmup_ratio,
            schedule=llm.lr_schedule,
        )
        if llm.deepspeed:
            import deepspeed

            ds_conf = deepspeed_config(
                llm.deepspeed,
                micro_batch_size=tc.micro_batch_size,
                world=self.world,
                bf16=llm.bf16,
                max_grad_norm=llm.max_grad_norm,
            )
            engine, _, _, _ = deepspeed.initialize(
                model=self.model, optimizer=opt, lr_scheduler=sched, config=ds_conf
            )
            self.backend: Any = DeepSpeedBackend(engine)
        else:
            ddp = ray.train.torch.prepare_model(self.model, move_to_device=False) if self.world > 1 else None
            self.backend = TorchBackend(
                self.model, opt, sched, max_grad_norm=llm.max_grad_norm, ddp_model=ddp
            )

    def _restore(self) -> None:
        import ray.train

        from b2ner_common.models.llm.sft_loop import STATE_FILE, load_torch_state

        self.state = {"step": 0, "tokens": 0, "examples": 0}
        ckpt = ray.train.get_checkpoint()
        if ckpt:
            with ckpt.as_directory() as d:
                if self.llm.deepspeed:
                    self.backend.engine.load_checkpoint(d, tag="ds", load_module_strict=False)
                    self.state = json.loads((Path(d) / STATE_FILE).read_text())
                else:
                    self.state = load_torch_state(d, self.backend)
        self.start = self.state["step"]

    def _steps(self, stats: Any):
        from b2ner_common.models.llm.sft_data import iter_steps

        tc, llm = self.tc, self.llm
        return iter_steps(
            self.rows,
            self.tok,
            start_step=self.start,
            total_steps=self.total,
            global_batch_size=tc.global_batch_size,
            seed=tc.seed,
            rank=self.rank,
            world=self.world,
            micro_batch_size=tc.micro_batch_size,
            packing=llm.packing,
            max_len=llm.max_len,
            resample_per_epoch=llm.resample_per_epoch,
            loss_average=llm.loss_average,
            max_labels=llm.max_labels,
            drop_p=llm.label_dropout,
            label_name=self.namer,
            definitions_by_lang=self.defs,
            stats=stats,
        )

    def train(self) -> None:
        import ray.train

        from b2ner_common.models.llm.sft_data import EncodeStats
        from b2ner_common.models.llm.sft_loop import train_step

        tc, spe, total, start, state = self.tc, self.spe, self.total, self.start, self.state
        stats = EncodeStats()
        t0, window_tokens, window_loss, window_steps = time.time(), 0, 0.0, 0
        for step, epoch, plan in self._steps(stats):
            _maybe_fail(self.config.get("fail_once", ""), step, self.rank, self.world)
            loss_share = train_step(self.backend, plan, self.world)
            loss, tokens, examples = _all_reduce_sum([loss_share, plan.tokens, plan.examples])
            state["tokens"] += int(tokens)
            state["examples"] += int(examples)
            window_tokens, window_loss, window_steps = (
                window_tokens + tokens,
                window_loss + loss,
                window_steps + 1,
            )
            done = step + 1
            if self.progress is not None:
                self.progress.step(done, total, float(loss), state["examples"])
            end_of_epoch = done % spe == 0 or done == total
            metrics = {
                "step": done,
                "epoch": epoch + (done % spe or spe) / spe,
                "loss": loss,
                "lr": self.backend.lr(),
                "resumed_from": start,
            }
            if end_of_epoch:
                self._evaluate(metrics)
            report_now = done % tc.report_every == 0 or end_of_epoch
            if report_now:
                elapsed = time.time() - t0
                metrics.update(
                    {
                        "loss_avg": window_loss / window_steps,
                        "tokens_per_s": window_tokens / elapsed,
                        "truncated": stats.truncated,
                        "skipped": len(stats.skipped),
                    }
                )
                if self.tracker:
                    self.tracker.log_metrics(metrics, step=done)
                t0, window_tokens, window_loss, window_steps = time.time(), 0, 0.0, 0
            if done % tc.checkpoint_every == 0 or done == total:
                self.save_and_report(metrics, done)
            elif report_now:
                ray.train.report(metrics)
        if start >= total:  # a finished run launched again: nothing to train, keep the last checkpoint
            ray.train.report({"step": start, "already_done": 1})

    def _evaluate(self, metrics: dict[str, Any]) -> None:
        """End of an epoch: B2NER F1 on the eval rows, on rank 0 (skipped under ZeRO-3: weights are sharded)."""
        rows = self.config["eval_rows"]
        if not rows or (self.llm.deepspeed and _zero_stage(self.backend) == 3) or self.rank != 0:
            return
        from b2ner_common.models.llm.sft_eval import evaluate_rows

        metrics.update(evaluate_rows(self.backend.model, self.tok, rows, label_name=self.namer))

    def save_and_report(self, metrics: dict[str, Any], step: int) -> None:
        """Report `metrics` with a checkpoint: DeepSpeed state + adapter (every rank), or the torch state."""
        from b2ner_common.models.llm.sft_loop import ADAPTER_DIR, STATE_FILE, save_torch_state

        st = {**self.state, "step": step}

        def write(d: Path) -> None:
            if self.llm.deepspeed:
                self.backend.engine.save_checkpoint(str(d), tag="ds", exclude_frozen_parameters=True)
                _save_ds_adapter(self.backend, d / ADAPTER_DIR, self.tok, self.rank)
                if self.rank == 0:
                    (d / STATE_FILE).write_text(json.dumps(st, sort_keys=True))
            elif self.rank == 0:
                save_torch_state(str(d), self.backend, st, self.tok)

        report_with_checkpoint(metrics, write)

    def cleanup(self) -> None:
        if self.tracker:
            self.tracker.finish()


def train_loop(config: dict[str, Any]) -> None:
    """Runs on every Ray Train worker."""
    recipe = SFTRecipe(config)
    recipe.setup()
    recipe.train()
    recipe.cleanup()


def _zero_stage(backend: Any) -> int:
    return int(backend.engine.zero_optimization_stage()) if hasattr(backend, "engine") else 0


def _save_ds_adapter(backend: Any, out: Path, tok: Any, rank: int) -> None:
    """Save the LoRA adapter from a DeepSpeed engine; ZeRO-3 gathers the partitioned LoRA weights first
    (a collective: every rank enters, rank 0 writes)."""
    import contextlib

    ctx = contextlib.nullcontext()
    if _zero_stage(backend) == 3:
        import deepspeed

        params = [p for p in backend.model.parameters() if p.requires_grad]
        ctx = deepspeed.zero.GatheredParameters(params, modifier_rank=None)
    with ctx:
        if rank == 0:
            from b2ner_common.models.llm.sft_loop import save_adapter

            save_adapter(backend.model, out, tok)


# ------------------------------------------------------------------------------------------ driver


def train_llm(cfg: PipelineConfig, on_progress=None) -> dict[str, Any]:
    """Fit (or resume) the LoRA SFT run; returns a summary with the final adapter directory."""
    from b2ner_common.selection.training_rows import training_rows

    table = training_rows(cfg)
    result, rdir = fit(
        train_loop,
        cfg,
        table,
        loop_config={"eval_rows": eval_rows(cfg), "fail_once": os.environ.get(FAIL_ENV, "")},
        use_gpu=cfg.train.use_gpu,
        max_failures=cfg.train.llm.max_failures,
        num_to_keep=cfg.train.llm.checkpoints_to_keep,
        on_progress=on_progress,
    )
    summary: dict[str, Any] = {"run_dir": rdir, "train_rows": table.num_rows, "metrics": result.metrics or {}}
    return {**summary, **export_final(result, rdir, "adapter")}

"""`b2ner train` with `model.family: llm`: LoRA SFT of a causal LM with Ray Train (+ DeepSpeed ZeRO).

The whole job: read gold/selection + silver/samples as a Ray Dataset (Delta snapshot file lists),
run `train_loop` on `train.num_workers` workers (CPU or GPU), copy the final adapter out of the last
checkpoint. Data encoding, packing, loss and steps live in `b2ner_common.models.llm.sft_data*` (tested without Ray).

Resume: worker failures restart the worker group from the latest checkpoint (`train.llm.max_failures`);
running the same command again (same `train.output_dir` + `train.run_name`) resumes a stopped driver
from the latest checkpoint in `<output_dir>/<run_name>/`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from b2ner_common import tables
from b2ner_common.config import PROJECT_ROOT, PipelineConfig
from b2ner_common.tables import Table

FAIL_ENV = "B2NER_FAIL_ONCE"  # "<marker file>:<step>": the last worker dies once at that step (tests)


# ------------------------------------------------------------------------------------------ data


def _keep_selected(batch: pa.Table, ids: pa.Array) -> pa.Table:
    return batch.filter(pc.is_in(batch["sample_id"], value_set=ids))


def training_dataset(cfg: PipelineConfig):
    """Ray Dataset of the selected silver rows (Delta snapshot files, never the folder)."""
    import ray.data

    sel_path = tables.table_path(cfg.warehouse, Table.GOLD_SELECTION)
    silver_path = tables.table_path(cfg.warehouse, Table.SILVER_SAMPLES)
    for p, cmd in ((sel_path, "b2ner select"), (silver_path, "b2ner taxonomy")):
        if not tables.table_exists(p):
            raise FileNotFoundError(f"table {p} does not exist: run `{cmd}` first")
    run = cfg.train.llm.selection_run
    sel = tables.read_table(sel_path, columns=["sample_id", "dataset", "selection_run"])
    sel = sel.filter(pc.equal(sel["selection_run"], run))
    if sel.num_rows == 0:
        raise FileNotFoundError(
            f"selection run {run!r} has no rows in {sel_path}: run `b2ner select` "
            f"or set train.llm.selection_run"
        )
    leaked = set(sel["dataset"].to_pylist()) & set(cfg.train.llm.eval_datasets)
    if leaked:
        raise ValueError(
            f"selection run {run!r} contains eval datasets {sorted(leaked)}: never train on OOD-DEV"
        )
    ids = pc.unique(sel["sample_id"])
    cols = ["sample_id", "dataset", "lang", "text", "entities", "label_set"]
    ds = ray.data.read_parquet(tables.table_files(silver_path), columns=cols)
    ds = ds.map_batches(_keep_selected, fn_kwargs={"ids": ids}, batch_format="pyarrow")
    # Materialize on the driver: the selected set is small, and once the training workers hold every
    # CPU of a small cluster no read task could be scheduled any more (a deadlock on a 2-CPU machine).
    return ds.materialize(), sel.num_rows


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


def label_namer(version: str):
    """(English type name, lang) -> the taxonomy's display name (Chinese names for zh); unknown types as-is."""
    from b2ner_common.taxonomy import load_taxonomy

    tax = load_taxonomy(version)

    def name(key: str, lang: str) -> str:
        try:
            return tax.name(key, lang if lang in ("en", "zh") else "en")
        except (KeyError, ValueError, LookupError):
            return key

    return name, tax


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


def train_loop(config: dict[str, Any]) -> None:
    """Runs on every Ray Train worker."""
    import ray.train
    import ray.train.torch
    import torch

    from b2ner_common.models.llm.predictor import resolve_model_dirs
    from b2ner_common.models.llm.sft_data import EncodeStats, iter_steps, rows_from_arrow, steps_per_epoch
    from b2ner_common.models.llm.sft_loop import (
        ADAPTER_DIR,
        STATE_FILE,
        DeepSpeedBackend,
        TorchBackend,
        load_base,
        load_torch_state,
        make_optimizer,
        save_torch_state,
        train_step,
        wrap_lora,
    )
    from ray_train.common import MlflowTracker

    cfg = PipelineConfig.model_validate(config["cfg"])
    tc, llm = cfg.train, cfg.train.llm
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()

    shard = ray.train.get_dataset_shard("train")
    rows = rows_from_arrow(
        pa.concat_tables(list(shard.iter_batches(batch_format="pyarrow", batch_size=4096)))
    )
    spe = steps_per_epoch(len(rows), tc.global_batch_size)
    total = tc.max_steps or tc.epochs * spe

    base_dir, adapter_dir = resolve_model_dirs(cfg.model.path, cfg.model.base_model)
    adapter_dir = Path(llm.adapter) if llm.adapter else adapter_dir
    model, tok = load_base(base_dir, bf16=llm.bf16, adapter_dir=adapter_dir)
    torch.manual_seed(tc.seed)  # LoRA A init: the same on every run (DDP/DeepSpeed broadcast rank 0's)
    model = wrap_lora(
        model,
        r=llm.lora_r,
        alpha=llm.lora_alpha,
        dropout=llm.lora_dropout,
        target_modules=llm.target_modules,
        adapter_dir=adapter_dir,
        gradient_checkpointing=llm.gradient_checkpointing,
    )
    device = ray.train.torch.get_device()
    model.to(device)
    opt, sched = make_optimizer(
        model,
        lr=tc.lr,
        betas=llm.betas,
        weight_decay=tc.weight_decay,
        total_steps=total,
        warmup_ratio=llm.warmup_ratio,
    )
    if llm.deepspeed:
        import deepspeed

        ds_conf = deepspeed_config(
            llm.deepspeed,
            micro_batch_size=tc.micro_batch_size,
            world=world,
            bf16=llm.bf16,
            max_grad_norm=llm.max_grad_norm,
        )
        engine, _, _, _ = deepspeed.initialize(model=model, optimizer=opt, lr_scheduler=sched, config=ds_conf)
        backend: Any = DeepSpeedBackend(engine)
    else:
        ddp = ray.train.torch.prepare_model(model, move_to_device=False) if world > 1 else None
        backend = TorchBackend(model, opt, sched, max_grad_norm=llm.max_grad_norm, ddp_model=ddp)

    state = {"step": 0, "tokens": 0, "examples": 0}
    ckpt = ray.train.get_checkpoint()
    if ckpt:
        with ckpt.as_directory() as d:
            if llm.deepspeed:
                backend.engine.load_checkpoint(d, tag="ds", load_module_strict=False)
                state = json.loads((Path(d) / STATE_FILE).read_text())
            else:
                state = load_torch_state(d, backend)
    start = state["step"]

    tracker = None
    if rank == 0:
        run_dir = config["run_dir"]
        id_file = str(Path(run_dir) / "mlflow_run_id") if "://" not in run_dir else None
        tracker = MlflowTracker(config["tracking_uri"], "b2ner-train", tc.run_name, id_file)
        tracker.log_params(
            {
                "train": tc.model_dump(mode="json"),
                "model": cfg.model.model_dump(mode="json"),
                "world_size": world,
                "train_rows": len(rows),
            }
        )

    def save_and_report(metrics: dict, step: int) -> None:
        with tempfile.TemporaryDirectory() as d:
            st = {**state, "step": step}
            if llm.deepspeed:
                backend.engine.save_checkpoint(d, tag="ds", exclude_frozen_parameters=True)
                _save_ds_adapter(backend, Path(d) / ADAPTER_DIR, tok, rank)
                if rank == 0:
                    (Path(d) / STATE_FILE).write_text(json.dumps(st, sort_keys=True))
            elif rank == 0:
                save_torch_state(d, backend, st, tok)
            has_files = any(Path(d).iterdir())
            ray.train.report(
                metrics, checkpoint=ray.train.Checkpoint.from_directory(d) if has_files else None
            )

    namer, tax = label_namer(cfg.taxonomy.version)
    defs = {lang: tax.definitions(lang) for lang in ("en", "zh")} if llm.use_definitions else None
    stats = EncodeStats()
    t0, window_tokens, window_loss, window_steps = time.time(), 0, 0.0, 0
    metrics: dict[str, Any] = {"step": start}
    steps = iter_steps(
        rows,
        tok,
        start_step=start,
        total_steps=total,
        global_batch_size=tc.global_batch_size,
        seed=tc.seed,
        rank=rank,
        world=world,
        micro_batch_size=tc.micro_batch_size,
        packing=llm.packing,
        max_len=llm.max_len,
        resample_per_epoch=llm.resample_per_epoch,
        max_labels=llm.max_labels,
        drop_p=llm.label_dropout,
        label_name=namer,
        definitions_by_lang=defs,
        stats=stats,
    )
    for step, epoch, plan in steps:
        _maybe_fail(config.get("fail_once", ""), step, rank, world)
        loss_share = train_step(backend, plan, world)
        loss, tokens, examples = _all_reduce_sum([loss_share, plan.tokens, plan.examples])
        state["tokens"] += int(tokens)
        state["examples"] += int(examples)
        window_tokens, window_loss, window_steps = (
            window_tokens + tokens,
            window_loss + loss,
            window_steps + 1,
        )
        done = step + 1
        end_of_epoch = done % spe == 0 or done == total
        metrics = {
            "step": done,
            "epoch": epoch + (done % spe or spe) / spe,
            "loss": loss,
            "lr": backend.lr(),
            "resumed_from": start,
        }
        if end_of_epoch and config["eval_rows"] and not (llm.deepspeed and _zero_stage(backend) == 3):
            if rank == 0:
                from b2ner_common.models.llm.sft_eval import evaluate_rows

                metrics.update(evaluate_rows(backend.model, tok, config["eval_rows"], label_name=namer))
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
            if tracker:
                tracker.log_metrics(metrics, step=done)
            t0, window_tokens, window_loss, window_steps = time.time(), 0, 0.0, 0
        if done % tc.checkpoint_every == 0 or done == total:
            save_and_report(metrics, done)
        elif report_now:
            ray.train.report(metrics)
    if start >= total:  # a finished run launched again: nothing to train, keep the last checkpoint
        ray.train.report({"step": start, "already_done": 1})
    if tracker:
        tracker.finish()


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


def train_llm(cfg: PipelineConfig) -> dict[str, Any]:
    """Fit (or resume) the LoRA SFT run; returns a summary with the final adapter directory."""
    from ray.train import DataConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from ray_train.common import init_ray, make_run_config, run_dir, tracking_uri

    tc = cfg.train
    init_ray(cfg.ray)
    ds, n_rows = training_dataset(cfg)
    rdir = run_dir(tc)
    trainer = TorchTrainer(
        train_loop,
        train_loop_config={
            "cfg": cfg.model_dump(mode="json"),
            "run_dir": rdir,
            "tracking_uri": tracking_uri(tc),
            "eval_rows": eval_rows(cfg),
            "fail_once": os.environ.get(FAIL_ENV, ""),
        },
        scaling_config=ScalingConfig(num_workers=tc.num_workers, use_gpu=tc.use_gpu),
        run_config=make_run_config(
            tc, max_failures=tc.llm.max_failures, num_to_keep=tc.llm.checkpoints_to_keep
        ),
        datasets={"train": ds},
        # Every worker reads the whole (small, selected) set and takes its share of each step itself:
        # deterministic batches on any worker count, exact replay after a resume.
        dataset_config=DataConfig(datasets_to_split=[]),
    )
    result = trainer.fit()
    if result.error:
        raise result.error
    summary: dict[str, Any] = {"run_dir": rdir, "train_rows": n_rows, "metrics": result.metrics or {}}
    if result.checkpoint is not None and "://" not in rdir:
        final = Path(rdir) / "adapter"
        with result.checkpoint.as_directory() as d:
            src = Path(d) / "adapter"
            if src.is_dir():
                if final.exists():
                    shutil.rmtree(final)
                shutil.copytree(src, final)
                summary["adapter"] = str(final)
        summary["checkpoint"] = result.checkpoint.path
    return summary

"""Ray Data batch NER: input -> map_batches(callable class: one model per actor) -> gold/predictions.

The driver streams the predicted batches and commits every `predict.commit_every` documents with MERGE on
(run_id, doc_id); doc_ids already in the output for this run are filtered out first, so a killed job
rerun ends with exactly the rows of an uninterrupted run.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pandas as pd
import pyarrow as pa

from b2ner_common import schema, tables
from b2ner_common.config import PipelineConfig
from b2ner_common.predict.batch import get_predictor, normalize_documents, predict_batch
from b2ner_common.predict.job import (
    PredictSummary,
    commit_slice,
    count_table_rows,
    done_doc_ids,
    input_source,
    output_path,
)


class BatchPredictor:
    """Ray Data callable class: the constructor loads the model once per actor."""

    def __init__(self, cfg_json: str, factory: Callable | None = None) -> None:
        self.cfg = PipelineConfig.model_validate_json(cfg_json)
        self.predictor = get_predictor(self.cfg, factory)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        return predict_batch(
            batch,
            self.predictor,
            run_id=self.cfg.predict.run_id,
            labels=self.cfg.predict.labels,
            cfg=self.cfg,
        )


def _normalize(batch: pa.Table, cfg_json: str) -> pa.Table:
    pc_ = PipelineConfig.model_validate_json(cfg_json).predict
    return normalize_documents(batch, pc_, source=pc_.input)


def read_input(cfg: PipelineConfig):
    """Ray Dataset of doc_id, text[, labels, lang] (ids identical to the local and Spark paths)."""
    import ray.data

    path = cfg.predict.input
    src = input_source(cfg)
    if src.format == "delta":
        ds = ray.data.read_parquet(tables.table_files(path))  # the snapshot's files, never the folder
    elif src.format == "jsonl":
        ds = ray.data.read_json(path, file_extensions=["jsonl", "json"])
    else:
        ds = ray.data.read_parquet(path)
    if cfg.predict.limit is not None:
        ds = ds.limit(cfg.predict.limit)
    return ds.map_batches(_normalize, fn_args=(cfg.model_dump_json(),), batch_format="pyarrow")


VLLM_INSTALL = "pip install 'ray[llm]==2.60.0'  # brings vllm; GPU image only, see docs/inference.md#vllm"


class _Prompts:
    """Ray Data callable class: per document, the prompts `predict_batch` would send (tokenizer only)."""

    def __init__(self, cfg_json: str) -> None:
        from b2ner_common.models.llm.predictor import load_llm_tokenizer

        self.cfg = PipelineConfig.model_validate_json(cfg_json)
        self.tok = load_llm_tokenizer(self.cfg.model)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        from b2ner_common.predict.llm_stages import document_prompts

        return document_prompts(batch, self.cfg, self.tok, _llm_name(self.cfg))


class _Answers:
    """Ray Data callable class: one document's answered prompts -> its PREDICTIONS row."""

    def __init__(self, cfg_json: str) -> None:
        from b2ner_common.models.llm.predictor import load_llm_tokenizer

        self.cfg = PipelineConfig.model_validate_json(cfg_json)
        self.tok = load_llm_tokenizer(self.cfg.model)

    def __call__(self, group: pd.DataFrame) -> pd.DataFrame:
        from b2ner_common.predict.llm_stages import document_predictions

        return document_predictions(
            group, self.cfg, self.tok, _llm_name(self.cfg), max_new_tokens=self.cfg.model.max_new_tokens
        )


def _llm_name(cfg: PipelineConfig) -> str:
    from b2ner_common.models.llm.predictor import resolve_model_dirs

    base, adapter = resolve_model_dirs(cfg.model.path, cfg.model.base_model)
    return f"llm:{base.name}" + (f"+{adapter.name}" if adapter else "") + ":vllm"


def vllm_processor(cfg: PipelineConfig):
    """Ray Data LLM processor: vLLM engine actors (tensor parallel, the LoRA adapter per request).

    Raises RuntimeError naming the install command when Ray's LLM extra or vLLM is missing.
    """
    try:
        import vllm  # noqa: F401
        from ray.data.llm import build_processor, vLLMEngineProcessorConfig
    except ImportError as e:
        raise RuntimeError(
            f"model.backend=vllm with predict.engine=ray needs Ray Data LLM and vLLM ({e.name} is missing): "
            f"{VLLM_INSTALL}. On CPU use model.backend=hf."
        ) from e
    from b2ner_common.models.llm.predictor import check_remote_code, resolve_model_dirs

    m = cfg.model
    base, adapter = resolve_model_dirs(m.path, m.base_model)
    check_remote_code([base], m.trust_remote_code)
    config = vLLMEngineProcessorConfig(
        model_source=str(base),
        engine_kwargs={
            "tensor_parallel_size": m.tensor_parallel_size,
            "enable_lora": adapter is not None,
            "max_lora_rank": 64,
            "max_loras": 1,
            "max_model_len": m.max_input_tokens + m.max_new_tokens,
            "gpu_memory_utilization": m.gpu_memory_utilization,
            "dtype": m.dtype,
            "trust_remote_code": m.trust_remote_code,
        },
        # Adapters are loaded by name from this folder (our adapter folder's parent).
        dynamic_lora_loading_path=str(adapter.parent) if adapter is not None else None,
        concurrency=max(1, cfg.predict.workers),  # engine replicas, each tensor_parallel_size GPUs
        batch_size=cfg.predict.batch_size,
        chat_template_stage=False,  # B2NER prompts are plain text, no chat template
        tokenize_stage=True,
        detokenize_stage=True,
    )
    lora = adapter.name if adapter is not None else None

    def pre(row: dict) -> dict:
        out = {
            **row,
            "prompt": row["prompt"],
            "sampling_params": {"temperature": 0.0, "max_tokens": m.max_new_tokens},
        }
        if lora:
            out["model"] = lora
        return out

    def post(row: dict) -> dict:
        keep = ("doc_id", "text", "labels", "lang", "prompt_index", "generated_text", "num_generated_tokens")
        return {k: row[k] for k in keep if k in row}

    return build_processor(config, preprocess=pre, postprocess=post)


def vllm_predictions(ds, cfg: PipelineConfig):
    """docs -> prompts (CPU) -> Ray Data LLM vLLM stage (GPU) -> parsed PREDICTIONS rows (CPU)."""
    processor = vllm_processor(cfg)
    cfg_json = cfg.model_dump_json()
    prompts = ds.map_batches(_Prompts, fn_constructor_args=(cfg_json,), batch_format="pandas", concurrency=1)
    # Documents without a prompt (no text / no labels) skip the engine; predict_batch gives their error row.
    answered = processor(prompts.filter(lambda r: r["prompt_index"] >= 0)).union(
        prompts.filter(lambda r: r["prompt_index"] < 0)
    )
    return answered.groupby("doc_id").map_groups(
        _Answers, fn_constructor_args=(cfg_json,), batch_format="pandas", concurrency=1
    )


def _actors(cfg: PipelineConfig) -> int:
    """Model replicas; CPU actors leave one CPU free for the read/normalize tasks, or the pipeline stalls."""
    import ray

    want = max(1, cfg.predict.workers)
    if cfg.model.device.startswith("cuda"):
        return want
    cpus = int(ray.cluster_resources().get("CPU", 1))
    return max(1, min(want, cpus - 1))


def _predicted(ds, cfg: PipelineConfig, predictor_factory: Callable | None):
    """One model replica per actor: prompt, generate and parse inside `predict_batch`."""
    return ds.map_batches(
        BatchPredictor,
        fn_constructor_args=(cfg.model_dump_json(), predictor_factory),
        batch_size=cfg.predict.batch_size,
        batch_format="pandas",
        concurrency=_actors(cfg),
        # One model replica per actor: a CPU each, or a GPU each when the model runs on CUDA.
        num_gpus=1 if cfg.model.device.startswith("cuda") else 0,
        num_cpus=0 if cfg.model.device.startswith("cuda") else 1,
    )


def run_predict(
    cfg: PipelineConfig,
    predictor_factory: Callable | None = None,
    on_commit: Callable[[PredictSummary, int], None] | None = None,
) -> PredictSummary:
    """The Ray Data job; returns the same summary as the local and Spark engines."""
    import ray

    from ray_train.common import init_ray

    t0 = time.perf_counter()
    # Actor logs stay on the workers: per-batch model output would flood the driver's console.
    started = init_ray(cfg.ray, log_to_driver=False)
    try:
        out = output_path(cfg)
        summary = PredictSummary(run_id=cfg.predict.run_id, output=out)
        ds = read_input(cfg)
        done = done_doc_ids(out, cfg.predict.run_id, cfg.predict.retry_errors)
        # Known ids are dropped before the model sees them; duplicates are dropped by the driver below.
        if done:
            ds = ds.filter(lambda row: row["doc_id"] not in done)
        if cfg.model.family == "llm" and cfg.model.backend == "vllm":
            predicted = vllm_predictions(ds, cfg)
        else:
            predicted = _predicted(ds, cfg, predictor_factory)
        seen: set[str] = set()
        problems: dict[str, int] = {}
        pending: list[pa.Table] = []
        n_pending = 0

        def flush() -> None:
            nonlocal pending, n_pending
            if not pending:
                return
            rows = pa.concat_tables(pending)
            commit_slice(out, rows, cfg, summary, problems, t0)
            pending, n_pending = [], 0
            if on_commit:
                on_commit(summary, -1)

        for batch in predicted.iter_batches(batch_size=cfg.predict.commit_every, batch_format="pyarrow"):
            batch = batch.select(schema.PREDICTIONS.names).cast(schema.PREDICTIONS)
            keep = []
            for n, doc_id in enumerate(batch["doc_id"].to_pylist()):
                if doc_id in seen:
                    summary.duplicate_ids += 1
                else:
                    seen.add(doc_id)
                    keep.append(n)
            pending.append(batch.take(pa.array(keep, pa.int64())))
            n_pending += len(keep)
            if n_pending >= cfg.predict.commit_every:
                flush()
        flush()
        summary.skipped_done = len(done)
        summary.input_docs = len(seen) + summary.duplicate_ids + len(done)
        summary.problems = problems
        summary.seconds = time.perf_counter() - t0
        return count_table_rows(summary)
    finally:
        if started:
            ray.shutdown()

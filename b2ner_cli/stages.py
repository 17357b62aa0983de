"""The one table that picks an engine or a model family: {(stage, engine | family): "module:function"}.

`b2ner run` and every `b2ner <stage>` command go through `run_stage`; nothing else in the project chooses
between Spark, Ray and the in-process engines, or between the trainers of the model families. Targets are
named as strings and imported on first use, so `b2ner --help` never loads Spark, Ray or torch.

Naming rule for entry points: an engine shell is `spark_jobs/<stage>.py:run_<stage>` or
`ray_train/<module>.py:run_<stage>` / `train_<family>`; the in-process engine lives in
`b2ner_common/<stage>/job.py`. Every target takes the resolved config first.
(Predictors are loaded by family inside the workers of every engine, so their table is core:
`b2ner_common.models.base.FAMILIES`; a test keeps every trainable family here known there.)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from b2ner_cli.options import UsageError
from b2ner_common.config import PipelineConfig

STAGES: dict[tuple[str, str], str] = {
    ("ingest", "local"): "b2ner_common.ingest.job:run_local",
    ("ingest", "spark"): "spark_jobs.ingest:run_ingest",
    ("taxonomy", "local"): "b2ner_common.taxonomy.job:apply_local",
    ("taxonomy", "spark"): "spark_jobs.taxonomy:run_taxonomy",
    ("conflicts", "local"): "b2ner_common.taxonomy.job:conflicts_local",
    ("conflicts", "spark"): "spark_jobs.conflicts:run_conflicts",
    ("embed", "spark"): "spark_jobs.embed:run_embed",
    ("select", "spark"): "spark_jobs.select:run_select",
    ("predict", "local"): "b2ner_common.predict.job:run_local",
    ("predict", "spark"): "spark_jobs.predict:run_predict",
    ("predict", "ray"): "ray_train.predict:run_predict",
    ("train", "llm"): "ray_train.train_llm:train_llm",
    ("train", "span-encoder"): "ray_train.train_span_encoder:train_span_encoder",
}


def engine_of(stage: str, cfg: PipelineConfig) -> str:
    """The engine (or, for train, the model family) that `cfg` asks for at `stage`."""
    if stage == "ingest":
        return cfg.ingest.engine
    if stage in ("taxonomy", "conflicts"):
        return cfg.taxonomy.engine
    if stage == "predict":
        return cfg.predict.engine
    if stage == "train":
        return cfg.model.family
    return "spark"  # embed and select have one engine (Spark: local[2] by default)


def stage_function(stage: str, key: str) -> Callable[..., Any]:
    """Import and return the function registered for (stage, key); UsageError names what exists."""
    try:
        target = STAGES[(stage, key)]
    except KeyError:
        known = ", ".join(sorted(k for s, k in STAGES if s == stage))
        if stage == "train":
            raise UsageError(f"model.family={key!r} cannot be trained; trainable families: {known}") from None
        raise UsageError(f"{stage}: no engine {key!r}; available: {known}") from None
    module, _, name = target.partition(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != module:
            raise
        raise UsageError(f"{stage} with {key!r} needs {module}, which is not in this installation") from None
    return getattr(mod, name)


def run_stage(stage: str, cfg: PipelineConfig, **kwargs: Any) -> Any:
    """Run `stage` on the engine (or family) the config names; kwargs go to the engine function."""
    key = engine_of(stage, cfg)
    if stage == "train" and key == "llm" and not cfg.model.path:
        raise UsageError(
            "model.path is empty: set it to a local base model directory (config.json + weights)"
        )
    return stage_function(stage, key)(cfg, **kwargs)

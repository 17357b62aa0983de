"""One typed configuration for every stage.

- Sections are pydantic models with `extra="forbid"`: an unknown or misspelled key is an error that names it.
- Defaults run the embedded local setup (local Spark, a local warehouse folder, local Ray).
- YAML files in `configs/` are saved instances; `key.sub=value` overrides apply on top (values parsed as YAML).
- The resolved config is written next to every output and into Delta commit metadata.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPORA = PROJECT_ROOT.parent / "shared" / "corpora"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SparkConfig(Section):
    """Every Spark job reads and writes Delta with delta-spark, from the executors, local and on a cluster."""

    master: str = "local[2]"  # "yarn", "spark://host:7077", "k8s://..." on a cluster
    app_name: str = "b2ner"
    # Folder with the Delta jars that `make install` fetched (None = <venv>/jars, or $B2NER_DELTA_JARS).
    # "provided": the cluster already has Delta on its classpath (EMR, Databricks, Dataproc images, or
    # `spark-submit --jars`); the session then adds no jars. Never downloaded at run time.
    delta_jars: str | None = None
    shuffle_partitions: int = 8
    conf: dict[str, str] = Field(default_factory=dict)  # extra spark.* settings, passed through

    @model_validator(mode="before")
    @classmethod
    def _removed_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and "table_backend" in data:
            raise ValueError(
                "spark.table_backend was removed: every Spark job now writes Delta with delta-spark"
                " (one code path, local and cluster); delete the key from your config"
            )
        return data


class RayConfig(Section):
    address: str | None = None  # None starts a local Ray; "auto" or "ray://head:10001" joins a cluster
    num_cpus: int | None = None  # local Ray only
    # Ray Data progress bars: off by default, they redraw every second in job logs (also after finishing).
    progress_bars: bool = False
    # Worker and actor logs in this console too (`--verbose`); off, they go only to Ray's session log
    # folder (/tmp/ray/session_latest/logs), which the main job's summary names.
    log_to_driver: bool = False


class IngestConfig(Section):
    corpora: str = str(DEFAULT_CORPORA)  # folder of corpora; the generated sample corpus is used when absent
    catalogs: list[str] = Field(default_factory=list)  # extra catalog YAML files for your own corpora
    datasets: list[str] = Field(default_factory=list)  # restrict to these datasets (empty = all in catalogs)
    replicate: int = Field(1, ge=1)  # read every file N times as distinct sources (benchmarks only)
    builtin_catalog: bool = True  # include the shipped catalog of ../shared/corpora (b2ner_common/catalogs)
    # Datasets ingested when `datasets` is empty, by catalog role; "duplicate" ones only when named.
    roles: list[Literal["train_pool", "ood_dev", "duplicate"]] = Field(
        default_factory=lambda: ["train_pool", "ood_dev"]
    )
    engine: Literal["spark", "local"] = "spark"  # "local": same readers in one Python process, no JVM
    chunk_mb: float = Field(2.0, gt=0)  # files are cut into record-aligned chunks of about this size
    partitions: int | None = None  # Spark tasks; None = 2 x the default parallelism
    sample_corpus: str = "sample_corpus"  # where `b2ner run` generates its corpus when `corpora` is absent


class TaxonomyConfig(Section):
    version: str = "v1"  # versioned taxonomy + mapping files shipped in b2ner_common/taxonomy/data
    mappings: list[str] = Field(default_factory=list)  # extra mapping YAML files for your own datasets
    conflict_examples: int = 3  # examples kept per conflict row
    engine: Literal["spark", "local"] = "spark"  # "local": the same core functions in one process, no JVM
    min_self_ratio: float = Field(0.5, ge=0.0, le=1.0)  # conflicts: drop strings a dataset itself rarely tags
    min_mention_chars: int = Field(2, ge=1)  # conflicts: shorter mentions are not screened
    report_dir: str = "reports/taxonomy"  # `b2ner taxonomy report` writes report.md + heatmap PNG here


class SelectConfig(Section):
    embed_model: str = "all-minilm-l6-v2"  # short name, or a local sentence-transformers/HF encoder directory
    embed_batch_size: int = 128
    # Arithmetic of the encoder: "auto" (bf16 where the CPU has AVX512-BF16/AMX, else fp32), "fp32", "bf16"
    # (autocast; slow without those units), "int8" (dynamic int8 Linear layers). Speed and cosine to fp32:
    # docs/benchmarks.md "embed". Vectors already in gold/embeddings are not redone when this changes.
    embed_precision: Literal["auto", "fp32", "bf16", "int8"] = "auto"
    embed_max_tokens: int | None = Field(None, ge=8)  # cut sentences after N tokens (None: model limit, 256)
    dedup_threshold: float = 0.95  # cosine similarity above which two samples are near-duplicates
    decontaminate: list[str] = Field(default_factory=list)  # eval datasets; empty = the OOD-DEV corpora
    budget_per_dataset: int = 1300  # B2NERD keeps ~1.3k samples per dataset
    budget_fraction: float | None = None  # if set, a fraction of each dataset instead of the absolute budget
    strategy: Literal["kmeans", "kcenter", "random"] = "kmeans"
    seed: int = 0
    run_id: str = "default"  # gold/selection rows of this run are replaced on re-run (letters, digits, _.-)
    embed_threads: int | None = None  # torch/FAISS threads per Spark task; None = spark.task.cpus
    splits: list[str] = Field(default_factory=lambda: ["train"])  # splits selection draws from
    datasets: list[str] = Field(default_factory=list)  # restrict selection to these datasets (empty = all)
    langs: list[str] = Field(default_factory=list)  # restrict selection to these languages (empty = all)
    # Seeded cap on each dataset's candidates (same rows for embed and select): bounds the embedding cost,
    # which dominates on CPU. None = every candidate.
    max_candidates_per_dataset: int | None = Field(None, ge=1)
    embed_scope: Literal["candidates", "all"] = "candidates"  # embed selection candidates, or all silver
    exclude: list[str] = Field(
        default_factory=list
    )  # never select from these (eval datasets always excluded)
    empty_share: float = Field(0.05, ge=0.0, le=1.0)  # share of a dataset's budget for samples with no entity
    kmeans_iters: int = 20  # FAISS k-means iterations (stage 2)
    compare_strategies: bool = True  # report coverage of kmeans vs kcenter vs random (runs all three)
    report_dir: str = "reports/selection"  # markdown report + plot go to <report_dir>/<run_id>/


class PredictConfig(Section):
    input: str = ""  # Delta table, Parquet or JSONL path
    text_column: str = "text"
    id_column: str = "doc_id"
    labels: list[str] = Field(default_factory=list)
    engine: Literal["local", "spark", "ray"] = "spark"
    batch_size: int = Field(32, ge=1)
    run_id: str = "default"
    max_chars: int = Field(2000, ge=1)  # documents longer than this are chunked with overlap
    overlap_chars: int = Field(200, ge=0)
    output: str = ""  # predictions Delta table; empty = <warehouse>/gold/predictions
    labels_column: str = ""  # per-document label sets (list or comma-separated string); overrides `labels`
    lang_column: str = ""  # per-document language ("en"/"zh"); empty = detect from the text
    commit_every: int = Field(512, ge=1)  # documents per Delta commit: a killed job loses at most this much
    max_chunks: int | None = Field(None, ge=1)  # chunks per document at most; the rest is flagged truncated
    limit: int | None = Field(None, ge=0)  # only the first N input documents (smoke runs)
    workers: int = Field(2, ge=1)  # Ray actors (model replicas) / Spark partitions per commit slice
    retry_errors: bool = (
        True  # a re-run of the run id redoes documents whose row is an error; false keeps them
    )


class SpanEncoderModelConfig(Section):
    """model.span: architecture/decoding of the span-encoder family (a saved model keeps its own)."""

    # bi: text tower + frozen label tower (~6x the training samples per CPU-second; the better of the two
    # at CPU budgets up to 8 min, measured in docs/benchmarks.md "quality"); uni: labels written into the
    # encoder input (GLiNER's uni-encoder; set freeze_layers=0, threshold from the sweep), needs more compute
    architecture: Literal["uni", "bi"] = "bi"
    label_pooling: Literal["marker", "mean"] = "marker"  # uni: label vector from its marker, or the mean
    max_width: int = 12  # longest entity in words (a CJK character is one word); wider gold is skipped
    max_tokens: int = 128  # encoder window; longer texts are cut into windows at word boundaries
    freeze_layers: int = 3  # lower encoder layers kept frozen: fewer frees more quality, costs speed
    span_dim: int = 256
    use_definitions: bool = False  # label text "name: definition" where the taxonomy gives one
    threshold: float | None = None  # decision threshold; None = the one saved with the model
    # bi: a found span's label = argmax of trained logit + prior_weight * cosine of the frozen tower's
    # embeddings of its text and the label text (knows fine types the training labels never name).
    # None: new models 20 (bi) / 0 (uni), predict the weight saved with the model; 0 turns it off.
    prior_weight: float | None = Field(None, ge=0)
    batch_size: int = 64  # segments per forward pass at inference
    quantize: bool = False  # dynamic int8 for CPU inference (faster, slightly different scores)


class SpanTrainerKnobs(Section):
    """The span trainer's per-step knobs, written once: `train.span` (SpanEncoderTrainConfig) adds the data
    knobs, `models.span_encoder.train.SpanTrainOptions` the run-level ones (steps, seed, schedule)."""

    # Training-time budget in minutes: steps are planned from the measured step time and the LR schedule
    # (warm-up, linear decay to 0) fits the budget. Set: overrides train.max_steps / train.epochs.
    max_minutes: float | None = Field(None, gt=0)
    batch_size: int = 32  # segments per step per worker
    lr_encoder: float = 1e-4  # the trained (upper) encoder layers
    lr_head: float = 2e-3  # span/label heads (and the uni label marker), trained from scratch
    max_labels: int = 12  # labels shown per sample (uni: each costs ~3 tokens of input per sample)
    pool_negatives: int = 2  # random labels from the whole pool (may be false negatives: keep few)
    drop_positive: float = 0.1  # B2NER: each positive label dropped with its entities
    focal_gamma: float = Field(2.0, ge=0.0)  # > 0: focal loss, down-weights the many easy negatives
    positive_weight: float = Field(3.0, gt=0.0)  # weight of positive (span, label) pairs in the loss
    label_field: Literal["type", "label"] = "type"  # taxonomy types, or the corpora's raw labels


class SpanEncoderTrainConfig(SpanTrainerKnobs):
    """train.span: training of the span-encoder family (train.max_steps/epochs/seed/num_workers apply)."""

    source: Literal["selection", "silver"] = "selection"  # gold/selection joined with silver, or all silver
    max_samples: int | None = None  # cap on training samples (sampled with train.seed)
    threads_per_worker: int | None = None  # torch threads per Ray worker; None = cores / workers


class ModelConfig(Section):
    family: Literal["llm", "span-encoder", "lexicon"] = "span-encoder"  # lexicon: gazetteer file in `path`
    path: str = ""  # local model directory (base model, trained span encoder, or LoRA adapter)
    base_model: str = ""  # base model directory for a LoRA adapter
    backend: Literal["hf", "vllm"] = "hf"
    max_new_tokens: int = 256
    device: str = "cpu"
    batch_size: int = 8  # prompts per generate() call (LLM)
    max_input_tokens: int = 4096  # longer prompts are cut from the left of the text and flagged truncated
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # auto: bf16 on GPU, fp32 on CPU
    lang: Literal["auto", "en", "zh"] = "auto"  # prompt template; auto = zh when the text is mostly CJK
    gpu_memory_utilization: float = 0.85  # vLLM only
    tensor_parallel_size: int = Field(
        1, ge=1
    )  # vLLM only: GPUs per model replica (a 20B base in bf16 wants 2+)
    # Run the Python code a model directory ships (`auto_map` in config.json / tokenizer_config.json, e.g.
    # InternLM2 under the released B2NER adapters). Off: such a directory is refused with this key named.
    trust_remote_code: bool = False
    span: SpanEncoderModelConfig = Field(default_factory=SpanEncoderModelConfig)  # family span-encoder


class LLMTrainConfig(Section):
    """LoRA SFT of a causal LM (`model.family: llm`); B2NER reference values as defaults."""

    lora_r: int = 32
    lora_alpha: int = 64
    lora_dropout: float = 0.05
    target_modules: list[str] = Field(
        default_factory=list
    )  # empty = attention projections for the architecture
    adapter: str = ""  # existing peft adapter dir to continue training from (else a fresh LoRA)
    deepspeed: str = ""  # "zero2", "zero3" (configs/deepspeed/<name>.json) or a JSON path; "" = plain DDP
    max_len: int = 2048  # tokens per (packed) row; longer examples are cut at the end and counted
    packing: bool = True  # pack short examples into rows of max_len (per-example attention, see docs)
    bf16: bool = False  # bf16 weights/compute (GPU); fp32 on CPU
    gradient_checkpointing: bool = False  # recompute activations: less memory, ~30% more compute
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_ratio: float = 0.03  # linear warm-up share of all steps, then lr_schedule
    # After warm-up: "cosine" decays to 0 by the last step (ours); "constant" keeps the peak LR (official B2NER).
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    # With target_modules empty: "attention" = q/k/v/o projections (ours, more capacity); "qkv" = q/k/v only,
    # fused where the architecture fuses them (InternLM2 wqkv; the official B2NER recipe).
    lora_targets: Literal["attention", "qkv"] = "attention"
    # "token": every target token weighs the same (long answers dominate); "example": every example weighs
    # the same (a " None" answer counts as much as a long one; the official B2NER recipe).
    loss_average: Literal["token", "example"] = "token"
    max_grad_norm: float = 1.0
    max_labels: int = 18  # labels per prompt (positives first, random negatives fill)
    label_dropout: float = 0.1  # each prompt label dropped with its entities
    resample_per_epoch: bool = True  # new negatives/dropout/order every epoch (False: fixed per sample)
    use_definitions: bool = False  # prompts with taxonomy label definitions
    max_failures: int = 2  # worker-group restarts from the latest checkpoint before the run fails
    checkpoints_to_keep: int = 2
    eval_datasets: list[str] = Field(default_factory=list)  # OOD-DEV datasets scored after each epoch
    eval_max_samples: int = 100  # per eval dataset (generation is slow)


class TrainConfig(Section):
    output_dir: str = "runs"
    run_name: str = "b2ner"
    num_workers: int = 2
    use_gpu: bool = False
    epochs: int = 5
    max_steps: int | None = None
    global_batch_size: int = 128
    micro_batch_size: int = 4
    lr: float = 3e-4
    weight_decay: float = 1e-4
    seed: int = 0
    report_every: int = 50  # a Ray Train report costs ~2 s: report every N steps, not every step
    checkpoint_every: int = 200
    tracking_uri: str = ""  # MLflow; empty = file store under output_dir
    selection_run: str = ""  # gold/selection run every family trains on; empty = select.run_id
    span: SpanEncoderTrainConfig = Field(default_factory=SpanEncoderTrainConfig)  # family span-encoder
    llm: LLMTrainConfig = Field(default_factory=LLMTrainConfig)  # family llm


class EvaluateConfig(Section):
    datasets: list[str] = Field(default_factory=list)  # empty = the OOD-DEV benchmark
    max_samples: int | None = None  # per dataset, a fixed sample (the same for every model and seed)
    seeds: list[int] = Field(default_factory=lambda: [0])  # label order in prompts; mean +/- sd over seeds
    models: list[str] = Field(default_factory=list)  # model dirs of training seeds (same family): mean +/- sd
    report_dir: str = "reports"
    splits: list[str] = Field(
        default_factory=lambda: ["test", "dev", "validation", "train"]
    )  # first present wins
    table: str = ""  # gold samples table; empty = silver/samples, falling back to bronze/samples
    batch_size: int = 16  # sentences per predictor call
    predictions: list[str] = Field(
        default_factory=list
    )  # B2NER predict_eval_predictions.jsonl files to score
    name: str = "ours"  # row name of our model in the report
    # "official": B2NER's test protocol (docs/evaluation.md): each dataset's labels in one fixed order for
    # every sentence (no seeds), and the official task+language group, sub-group and overall averages.
    # "ours": labels shuffled per sentence by each seed; per-language averages.
    protocol: Literal["ours", "official"] = "ours"
    # official protocol only: per dataset, its label names in the order to show (e.g. B2NERD's labels.json);
    # a dataset not listed keeps its mapping-file order. Each list must hold exactly the dataset's labels.
    label_orders: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _official_has_no_label_seeds(self) -> EvaluateConfig:
        if self.protocol == "official" and len(self.seeds) > 1:
            raise ValueError(
                "evaluate.seeds: the official protocol shows labels in one fixed order, so label-order seeds "
                "repeat the same run; give one seed, and training seeds as evaluate.models=[dir1, dir2, ...]"
            )
        return self


RUN_STAGES = ("ingest", "taxonomy", "embed", "select", "train", "evaluate")


class RunConfig(Section):
    """`b2ner run`: the main job chains the stages; each stage is also its own command."""

    stages: list[Literal["ingest", "taxonomy", "embed", "select", "train", "evaluate"]] = Field(
        default_factory=lambda: list(RUN_STAGES)
    )
    # The main job trains the span encoder for this many minutes (train.span.max_minutes) so it finishes
    # on a laptop; used only when train.max_steps and train.span.max_minutes are unset. null = epochs.
    train_minutes: float | None = 8.0
    # Sentences per OOD-DEV dataset the main job evaluates on; used only when evaluate.max_samples is unset.
    eval_samples: int | None = 300
    # Candidates per dataset the main job embeds and selects from; used only when
    # select.max_candidates_per_dataset is unset (embedding all ~240k train rows takes ~1 h on 2 cores).
    candidates_per_dataset: int | None = 3000


class PipelineConfig(Section):
    warehouse: str = "warehouse"  # local folder or object-store URI (s3://, abfss://, gs://)
    spark: SparkConfig = Field(default_factory=SparkConfig)
    ray: RayConfig = Field(default_factory=RayConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    taxonomy: TaxonomyConfig = Field(default_factory=TaxonomyConfig)
    select: SelectConfig = Field(default_factory=SelectConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    predict: PredictConfig = Field(default_factory=PredictConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    run: RunConfig = Field(default_factory=RunConfig)


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message names the key and the fix."""


# Keys that were renamed: an old key in a user's file or override is rejected with its new name.
RENAMED_KEYS = {
    "train.llm.selection_run": "train.selection_run",
    "train.span.selection_run": "train.selection_run",
}


def apply_override(data: dict, override: str) -> None:
    """Apply one `a.b.c=value` override to a nested dict in place (value parsed as YAML)."""
    if "=" not in override:
        raise ConfigError(f"override {override!r} is not key=value (e.g. select.seed=1)")
    key, raw = override.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"override {override!r}: the value is not valid YAML ({e})") from None
    set_value(data, key, value)


def set_value(data: dict, key: str, value: Any) -> None:
    """Set the dotted `key` of a nested dict to a Python value, taken as is (never parsed as YAML)."""
    parts = key.strip().split(".")
    node = data
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{key}: {p!r} is not a section")
    node[parts[-1]] = value


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    values: dict[str, Any] | None = None,
) -> PipelineConfig:
    """Load a YAML config (or the defaults), apply `key=value` overrides, then `values` ({dotted key:
    Python value}, e.g. from command-line flags, taken literally), validate. Raises ConfigError."""
    data: dict[str, Any] = {}
    if path:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist (see configs/ for examples)")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML: {e}") from e
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: top level must be a mapping of sections")
    for o in overrides or []:
        apply_override(data, o)
    for key, value in (values or {}).items():
        set_value(data, key, value)
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as e:
        where = f" in {path}" if path else ""
        lines = []
        for err in e.errors():
            key = ".".join(str(x) for x in err["loc"])
            hint = f" (renamed: use {RENAMED_KEYS[key]})" if key in RENAMED_KEYS else ""
            lines.append(f"  {key}: {err['msg']}{hint}")
        raise ConfigError(f"invalid config{where}:\n" + "\n".join(lines)) from None


def config_json(cfg: BaseModel) -> str:
    return json.dumps(cfg.model_dump(mode="json"), sort_keys=True)


def save_resolved(cfg: PipelineConfig, out_dir: str | Path, name: str = "resolved_config.yaml") -> Path:
    """Write the resolved config next to an output so the run can be repeated."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / name
    target.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
    return target

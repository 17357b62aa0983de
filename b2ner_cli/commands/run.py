"""`b2ner run`: the main job on the embedded default, as a list of stages.

ingest -> taxonomy (check + apply) -> embed -> select -> train (a short span-encoder run) -> evaluate (OOD-DEV).
Each stage is `fn(cfg, console, results) -> result` over the same functions its own command wraps;
`run.stages` picks a subset. Without ../shared/corpora the job generates and ingests a sample corpus.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from b2ner_cli.commands.ingest import wide_console
from b2ner_cli.options import CONFIG_OPTION, OVERRIDES_ARG, resolve_config
from b2ner_cli.progress import StageProgress, stage_progress, train_with_progress
from b2ner_cli.stages import run_stage
from b2ner_cli.summary import print_run_summary
from b2ner_common.config import PipelineConfig

Stage = Callable[[PipelineConfig, Console, dict[str, Any]], Any]


class StageFailed(Exception):
    """A stage ran and found a problem (exit code 1)."""


def prepare_corpora(cfg: PipelineConfig, console: Console) -> PipelineConfig:
    """Use ingest.corpora when it exists, else generate the sample corpus and point the catalog at it."""
    if Path(cfg.ingest.corpora).is_dir():
        return cfg
    from b2ner_common.ingest.sample_corpus import write_sample_corpus, write_sample_mappings

    catalog = write_sample_corpus(cfg.ingest.sample_corpus)
    mappings = write_sample_mappings(catalog)
    console.print(f"{cfg.ingest.corpora} not found: using the generated sample corpus in {catalog.parent}")
    cfg = cfg.model_copy(deep=True)
    cfg.ingest.corpora = str(catalog.parent)
    cfg.ingest.catalogs = [str(catalog)]
    cfg.ingest.builtin_catalog = False
    cfg.ingest.datasets = []
    cfg.taxonomy.mappings = [*cfg.taxonomy.mappings, *map(str, mappings)]
    return cfg


def stage_ingest(cfg: PipelineConfig, console: Console, results: dict[str, Any]):
    from b2ner_cli.commands.ingest import ingest_with_progress, print_report

    report = ingest_with_progress(cfg, console)
    print_report(report, console)
    if report.problems:
        raise StageFailed("ingest: counts do not reconcile")
    return report


def stage_taxonomy(cfg: PipelineConfig, console: Console, results: dict[str, Any]):
    """Check every raw label is mapped (fails listing the unmapped ones), then bronze -> silver."""
    from b2ner_cli.commands.taxonomy import problems_table
    from b2ner_common.taxonomy.job import bronze_label_counts, check_counts

    problems = [p for p in check_counts(cfg, bronze_label_counts(cfg)) if p.fatal]
    if problems:
        console.print(problems_table(problems))
        raise StageFailed(f"taxonomy: {len(problems)} mapping problems (see the table above)")
    with stage_progress("taxonomy", cfg.taxonomy.engine, cfg.spark, console):
        report = run_stage("taxonomy", cfg)
    console.print(f"silver/samples: {report.rows:,} samples of {len(report.datasets)} datasets", markup=False)
    return report


def stage_embed(cfg: PipelineConfig, console: Console, results: dict[str, Any]):
    with stage_progress("embed", "spark", cfg.spark, console):
        res = run_stage("embed", cfg)
    console.print(
        f"gold/embeddings: {res.computed:,} new of {res.candidates:,} in {res.seconds:.0f} s", markup=False
    )
    return res


def stage_select(cfg: PipelineConfig, console: Console, results: dict[str, Any]):
    from b2ner_common.selection import SelectionError

    try:
        with stage_progress("select", "spark", cfg.spark, console):
            res = run_stage("select", cfg)
    except SelectionError as e:
        raise StageFailed(f"select: {e}") from None
    console.print(f"gold/selection: {res.selected:,} samples selected; report {res.report}", markup=False)
    return res


def stage_train(cfg: PipelineConfig, console: Console, results: dict[str, Any]):
    return train_with_progress(run_stage, cfg, console)


def stage_evaluate(cfg: PipelineConfig, console: Console, results: dict[str, Any]):
    from b2ner_cli.commands.evaluate import run_evaluate

    cfg = cfg.model_copy(deep=True)
    trained = (results.get("train") or {}).get("model")
    if trained and not cfg.model.path:
        cfg.model.path = trained
    if not cfg.model.path and not cfg.evaluate.models:
        raise StageFailed("evaluate: no model (run the train stage or set model.path)")
    if not cfg.evaluate.datasets:
        cfg.evaluate.datasets, note = evaluation_datasets(cfg)
        console.print(note, markup=False)
    n_sets = len(cfg.evaluate.datasets) * max(1, len(cfg.evaluate.seeds))
    with StageProgress(console, "evaluate", unit="dataset runs", total=n_sets) as bar:
        done = [0]

        def tick(dataset: str, seed: int) -> None:
            done[0] += 1
            bar.update(done[0], note=f"{dataset} (seed {seed})")

        result, paths = run_evaluate(cfg, progress=tick)
    results["report_paths"] = paths
    return result


def evaluation_datasets(cfg: PipelineConfig) -> tuple[list[str], str]:
    """The OOD-DEV datasets present in the warehouse; without any (the generated sample corpus), the
    held-out dev/test splits of the datasets that have one, said plainly in the note."""
    from b2ner_common import tables
    from b2ner_common.evaluation.benchmark import ood_datasets

    t = tables.read_table(
        tables.table_path(cfg.warehouse, tables.Table.SILVER_SAMPLES), columns=["dataset", "split"]
    )
    pairs = set(zip(t["dataset"].to_pylist(), t["split"].to_pylist(), strict=True))
    present = {d for d, _ in pairs}
    ood = [d for d in ood_datasets() if d in present]
    if ood:
        return ood, f"zero-shot on the OOD-DEV datasets: {', '.join(ood)}"
    heldout = sorted({d for d, s in pairs if s != "train"})
    if not heldout:
        raise StageFailed("evaluate: no OOD-DEV dataset and no held-out split in the warehouse")
    cfg.evaluate.splits = [s for s in cfg.evaluate.splits if s != "train"]
    return (
        heldout,
        f"no OOD-DEV corpora here: in-domain held-out splits of {', '.join(heldout)} (not zero-shot)",
    )


STAGES: dict[str, Stage] = {
    "ingest": stage_ingest,
    "taxonomy": stage_taxonomy,
    "embed": stage_embed,
    "select": stage_select,
    "train": stage_train,
    "evaluate": stage_evaluate,
}


def main_job_caps(cfg: PipelineConfig) -> PipelineConfig:
    """Apply the main job's size caps (run.*) where the stage's own setting is unset.

    The stage commands (`b2ner embed`, `b2ner train`, ...) never see these caps: only `b2ner run` is sized
    to finish on a laptop.
    """
    cfg = cfg.model_copy(deep=True)
    if cfg.select.max_candidates_per_dataset is None:
        cfg.select.max_candidates_per_dataset = cfg.run.candidates_per_dataset
    if cfg.train.max_steps is None and cfg.train.span.max_minutes is None:
        cfg.train.span.max_minutes = cfg.run.train_minutes
    if cfg.evaluate.max_samples is None:
        cfg.evaluate.max_samples = cfg.run.eval_samples
    return cfg


def run_pipeline(cfg: PipelineConfig, console: Console, stages: list[str] | None = None) -> dict:
    """Run the configured stages (run.stages) in order; returns {stage: result}. Raises StageFailed.

    Every stage is idempotent, so re-running the main job recomputes only what is missing
    (embeddings are incremental; tables are merged or replaced per run).
    """
    cfg = main_job_caps(prepare_corpora(cfg, console))
    results: dict[str, Any] = {"config": cfg}
    timings: list[tuple[str, float]] = []
    for name in stages or cfg.run.stages:
        console.rule(name)
        t0 = time.perf_counter()
        results[name] = STAGES[name](cfg, console, results)
        timings.append((name, time.perf_counter() - t0))
    results["timings"] = dict(timings)
    print_run_summary(results, console)
    return results


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run_cmd(
        config: str = CONFIG_OPTION,
        overrides: list[str] = OVERRIDES_ARG,
        verbose: bool = typer.Option(False, "--verbose", "-v", help="Ray worker logs in the console too"),
    ) -> None:
        """Run the whole pipeline on the embedded default (ingest ../shared/corpora or a generated corpus)."""
        cfg = resolve_config(config, overrides, **({"ray.log_to_driver": True} if verbose else {}))
        console = wide_console()
        try:
            run_pipeline(cfg, console)
        except StageFailed as e:
            console.print(f"failed: {e}", style="bold red", markup=False)
            raise typer.Exit(1) from None

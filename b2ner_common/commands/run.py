"""`b2ner run`: the main job on the embedded default, as a list of stages.

Each stage is `fn(cfg, console, results) -> result`; later issues append their stages to STAGES
(taxonomy, select, ...). Without ../shared/corpora the job generates and ingests a sample corpus.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from b2ner_common.cli_options import CONFIG_OPTION, OVERRIDES_ARG, resolve_config
from b2ner_common.commands.ingest import wide_console
from b2ner_common.config import PipelineConfig

Stage = Callable[[PipelineConfig, Console, dict[str, Any]], Any]


class StageFailed(Exception):
    """A stage ran and found a problem (exit code 1)."""


def prepare_corpora(cfg: PipelineConfig, console: Console) -> PipelineConfig:
    """Use ingest.corpora when it exists, else generate the sample corpus and point the catalog at it."""
    if Path(cfg.ingest.corpora).is_dir():
        return cfg
    from b2ner_common.sample_corpus import write_sample_corpus

    catalog = write_sample_corpus(cfg.ingest.sample_corpus)
    console.print(f"{cfg.ingest.corpora} not found: using the generated sample corpus in {catalog.parent}")
    cfg = cfg.model_copy(deep=True)
    cfg.ingest.corpora = str(catalog.parent)
    cfg.ingest.catalogs = [str(catalog)]
    cfg.ingest.builtin_catalog = False
    cfg.ingest.datasets = []
    return cfg


def stage_ingest(cfg: PipelineConfig, console: Console, results: dict[str, Any]):
    from b2ner_common.commands.ingest import ingest_with_progress, print_report

    report = ingest_with_progress(cfg, console)
    print_report(report, console)
    if report.problems:
        raise StageFailed("ingest: counts do not reconcile")
    return report


STAGES: list[tuple[str, Stage]] = [("ingest", stage_ingest)]


def run_pipeline(
    cfg: PipelineConfig, console: Console, stages: list[tuple[str, Stage]] | None = None
) -> dict:
    """Run the stages in order; returns {stage name: result}. Raises StageFailed."""
    cfg = prepare_corpora(cfg, console)
    results: dict[str, Any] = {"config": cfg}
    for name, fn in stages or STAGES:
        console.rule(name)
        results[name] = fn(cfg, console, results)
    return results


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run_cmd(config: str = CONFIG_OPTION, overrides: list[str] = OVERRIDES_ARG) -> None:
        """Run the whole pipeline on the embedded default (ingest ../shared/corpora or a generated corpus)."""
        cfg = resolve_config(config, overrides)
        console = wide_console()
        try:
            run_pipeline(cfg, console)
        except StageFailed as e:
            console.print(f"failed: {e}", style="bold red", markup=False)
            raise typer.Exit(1) from None

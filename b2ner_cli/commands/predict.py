"""`b2ner predict`: batch NER over a Delta/Parquet/JSONL text column into gold/predictions (resumable)."""

from __future__ import annotations

from pathlib import Path

import typer

from b2ner_cli.options import CONFIG_OPTION, OVERRIDES_ARG, UsageError, comma_list, resolve_config


def trained_model_dir(cfg) -> Path:
    """Where `b2ner train` / `b2ner run` leave the span encoder: <train.output_dir>/<train.run_name>/model."""
    return Path(cfg.train.output_dir) / cfg.train.run_name / "model"


def default_model(cfg):
    """Without --model, the span-encoder family predicts with the model the main job trained.

    It used to build an untrained model silently, which finds almost nothing; now that is an error
    naming the fix when no trained model is there.
    """
    if cfg.model.path or cfg.model.family != "span-encoder":
        return cfg
    trained = trained_model_dir(cfg)
    if "://" in cfg.train.output_dir or not trained.is_dir():
        raise UsageError(
            f"no model: pass --model DIR, or train one first (`make run` or `b2ner train` writes {trained})"
        )
    return cfg.model_copy(update={"model": cfg.model.model_copy(update={"path": str(trained)})})


def run_predict(cfg, on_commit=None):
    """Run on the configured engine (b2ner_cli/stages.py); every engine returns a PredictSummary."""
    from b2ner_cli.stages import run_stage

    return run_stage("predict", cfg, on_commit=on_commit)


def register(app: typer.Typer) -> None:
    @app.command("predict")
    def predict_cmd(
        input: str = typer.Option(
            None, "--input", "-i", help="Delta table, Parquet file/folder or .jsonl file"
        ),
        labels: str = typer.Option(
            None, "--labels", "-l", help="comma-separated label names, e.g. person,location"
        ),
        engine: str = typer.Option(None, "--engine", "-e", help="spark | ray | local"),
        run_id: str = typer.Option(None, "--run-id", help="rows of a run are written once; rerun resumes it"),
        model: str = typer.Option(None, "--model", "-m", help="model dir / adapter dir / lexicon file"),
        family: str = typer.Option(None, "--family", help="llm | span-encoder | lexicon"),
        config: str = CONFIG_OPTION,
        overrides: list[str] = OVERRIDES_ARG,
    ) -> None:
        """Run NER over every document; killed runs resume where they stopped (same --run-id)."""
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
        from rich.table import Table

        label_flag = comma_list(labels, "--labels", "person,location")
        cfg = resolve_config(
            config,
            overrides,
            **{
                "predict.input": input,
                "predict.labels": label_flag,
                "predict.engine": engine,
                "predict.run_id": run_id,
                "model.path": model,
                "model.family": family,
            },
        )
        if not cfg.predict.input:
            raise UsageError("no input: pass --input PATH (Delta table, Parquet, or .jsonl)")
        cfg = default_model(cfg)
        if not cfg.predict.labels and not cfg.predict.labels_column:
            raise UsageError(
                "no labels: pass --labels a,b,c (or predict.labels_column=COLUMN for per-row sets)"
            )
        from b2ner_common.predict.batch import InputError

        console = Console(stderr=True)
        with Progress(
            TextColumn("[bold]predict[/] {task.description}"),
            BarColumn(),
            TextColumn("{task.completed} docs"),
            TextColumn("{task.fields[rate]:.1f} docs/s"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task(cfg.predict.engine, total=None, rate=0.0)

            def on_commit(summary, total):
                progress.update(
                    task,
                    completed=summary.predicted,
                    total=total if total > 0 else None,
                    rate=summary.docs_per_s,
                )

            try:
                summary = run_predict(cfg, on_commit=on_commit)
            except InputError as e:
                raise UsageError(str(e)) from None
        table = Table(title=f"b2ner predict: run {summary.run_id} ({cfg.predict.engine})")
        table.add_column("what")
        table.add_column("value", justify="right")
        for key, value in [
            ("input documents", summary.input_docs),
            ("already done (skipped)", summary.skipped_done),
            ("duplicate doc_ids", summary.duplicate_ids),
            ("predicted", summary.predicted),
            ("ok", summary.ok),
            ("truncated", summary.truncated),
            ("parse problems", summary.parse_error),
            ("errors", summary.errors),
            ("commits", summary.commits),
            ("rows of this run in the table", summary.table_rows),
            ("  of which errors", summary.table_errors),
            ("seconds", f"{summary.seconds:.1f}"),
            ("docs/s", f"{summary.docs_per_s:.1f}"),
        ]:
            table.add_row(key, str(value))
        for kind, count in summary.problems.items():
            table.add_row(f"  problem: {kind}", str(count))
        table.add_row("output", summary.output)
        Console().print(table)
        if summary.predicted and summary.errors == summary.predicted:
            console.print("every document failed; see the `error` column of the output", style="bold red")
            raise typer.Exit(1)

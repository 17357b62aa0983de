"""`b2ner evaluate`: the OOD benchmark (per dataset, per language or the official groups, mean +/- sd) + report."""

from __future__ import annotations

import typer

from b2ner_cli.options import CONFIG_OPTION, OVERRIDES_ARG, UsageError, comma_list, resolve_config


def run_evaluate(cfg, predictions: list[str] | None = None, progress=None):
    """Score B2NER prediction files, or a model on the benchmark's gold samples; write the report.

    Returns (EvalResult, {"markdown", "png", "json": paths}).
    """
    from pathlib import Path

    from b2ner_common.evaluation import benchmark as ev
    from b2ner_common.evaluation.report import write_report

    protocol = cfg.evaluate.protocol
    files = list(predictions or cfg.evaluate.predictions)
    if files:
        result = ev.score_b2ner_predictions(files, name=cfg.evaluate.name, protocol=protocol)
        note = f"Scored B2NER prediction files: {', '.join(Path(f).name for f in files)} (one per {'run' if protocol == 'official' else 'seed'})."
    else:
        models = list(cfg.evaluate.models) or ([cfg.model.path] if cfg.model.path else [])
        if not models:
            raise UsageError(
                "nothing to evaluate: pass --model DIR (with --family) or --predictions FILE.jsonl"
            )
        from b2ner_common.models.base import load_predictor

        datasets = cfg.evaluate.datasets or ev.ood_datasets()
        golds = ev.load_gold(cfg, datasets)
        result = ev.EvalResult(cfg.evaluate.name, protocol=protocol)
        names = []
        for i, path in enumerate(models):
            predictor = load_predictor(cfg.model.model_copy(update={"path": path}))
            names.append(getattr(predictor, "name", path))
            one = ev.evaluate_predictor(
                predictor,
                golds,
                cfg.evaluate.seeds,
                name=cfg.evaluate.name,
                batch_size=cfg.evaluate.batch_size,
                progress=progress,
                protocol=protocol,
                label_orders=cfg.evaluate.label_orders,
            )
            # Several models = several training seeds: each (model, label-order seed) pair is one run.
            for score in one.scores:
                score.seed = i * 1000 + score.seed
            result.scores.extend(one.scores)
        splits = ", ".join(f"{g.dataset}:{g.split}" for g in golds.values())
        note = f"Model(s) {', '.join(f'`{n}`' for n in names)}; gold splits: {splits}."
        if protocol == "official":
            note += " Labels shown in one fixed order per dataset (official protocol)."
    paths = write_report([result], Path(cfg.evaluate.report_dir), note=note)
    return result, paths


def register(app: typer.Typer) -> None:
    @app.command("evaluate")
    def evaluate_cmd(
        model: str = typer.Option(None, "--model", "-m", help="model dir / adapter dir / lexicon file"),
        family: str = typer.Option(None, "--family", help="llm | span-encoder | lexicon"),
        datasets: str = typer.Option(
            None, "--datasets", help="comma-separated; default: the OOD-DEV benchmark"
        ),
        predictions: list[str] = typer.Option(
            None, "--predictions", "-p", help="B2NER predict_eval_predictions.jsonl (repeat per seed)"
        ),
        report_dir: str = typer.Option(None, "--report-dir", help="where report.md / report.png go"),
        protocol: str = typer.Option(
            None,
            "--protocol",
            help="ours (labels shuffled per seed) | official (B2NER: fixed label order, official averages)",
        ),
        config: str = CONFIG_OPTION,
        overrides: list[str] = OVERRIDES_ARG,
    ) -> None:
        """Zero-shot OOD evaluation: b2ner F1 and span F1 per dataset and language, next to published numbers."""
        from rich.console import Console
        from rich.table import Table

        ds_flag = comma_list(datasets, "--datasets", "crossner_ai,mit_movie")
        cfg = resolve_config(
            config,
            overrides,
            **{
                "model.path": model,
                "model.family": family,
                "evaluate.datasets": ds_flag,
                "evaluate.report_dir": report_dir,
                "evaluate.protocol": protocol,
            },
        )
        console = Console(stderr=True)
        try:
            with console.status("evaluating") as status:
                result, paths = run_evaluate(
                    cfg, predictions, progress=lambda ds, seed: status.update(f"evaluated {ds} (seed {seed})")
                )
        except (FileNotFoundError, ValueError) as e:
            raise UsageError(str(e)) from None
        table = Table(title=f"b2ner evaluate: {result.name}")
        for col in ("dataset", "lang", "sentences", "b2ner F1", "span F1"):
            table.add_column(col, justify="left" if col in ("dataset", "lang") else "right")
        for ds, v in sorted(result.per_dataset().items(), key=lambda kv: (kv[1]["lang"], kv[0])):
            sd = f" ± {v['b2ner_f1_sd']:.1f}" if v["seeds"] > 1 else ""
            table.add_row(ds, v["lang"], str(v["n"]), f"{v['b2ner_f1']:.1f}{sd}", f"{v['span_f1']:.1f}")
        runs = len({s.seed for s in result.scores})
        if result.protocol == "official":
            for g in result.official_groups():
                sd = f" ± {g['f1_sd']:.1f}" if runs > 1 and g["f1"] is not None else ""
                f1 = "n/a" if g["f1"] is None else f"{g['f1']:.1f}{sd}"
                missing = f" (missing {len(g['missing'])})" if g["missing"] else ""
                table.add_row(f"{g['name']}{missing}", "", str(len(g["datasets"])) + " sets", f1, "")
        else:
            for lang, v in result.per_language().items():
                sd = f" ± {v['b2ner_f1_sd']:.1f}" if runs > 1 else ""
                table.add_row(f"{lang} average", lang, "", f"{v['b2ner_f1']:.1f}{sd}", f"{v['span_f1']:.1f}")
        Console().print(table)
        console.print(f"report: {paths['markdown']}  plot: {paths['png']}")

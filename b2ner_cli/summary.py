"""What `b2ner run` prints at the end: what each stage took in and produced, and the zero-shot F1.

Built from the stages' own result objects (no table is re-read), so it costs nothing and shows exactly
what this run did: rows in / out and seconds per stage, the selection per dataset, training samples and
final loss, the F1 table per dataset with the en / zh averages, and where the report and the model are.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _f(x: Any) -> str:
    return f"{x:,}" if isinstance(x, int) else str(x)


def stage_rows(name: str, result: Any) -> tuple[str, str, str]:
    """(rows in, rows out, note) of one stage's result object."""
    if result is None:
        return "", "", ""
    if name == "ingest":
        recon = result.reconciliation.to_pylist()
        accepted = sum(r["accepted"] for r in recon)
        rejected = sum(r["rejected"] for r in recon)
        return _f(result.records), _f(accepted), f"{rejected:,} rejected (bronze/rejects)"
    if name == "taxonomy":
        return "", _f(result.rows), f"silver/samples, {len(result.datasets)} datasets"
    if name == "embed":
        return _f(result.candidates), _f(result.computed), "new vectors (the rest were there)"
    if name == "select":
        seen = sum(st["cleaning"]["input"] for st in result.stats)
        return _f(seen), _f(result.selected), f"gold/selection run {result.run_id}"
    if name == "train":
        metrics = result.get("metrics") or {}
        loss = metrics.get("loss")
        seen = metrics.get("samples_seen") or metrics.get("samples")
        note = f"final loss {loss:.3f}" if isinstance(loss, float) else ""
        if seen:
            note += f", {int(seen):,} samples seen"
        return _f(result.get("train_rows", "")), "1 model", note.strip(", ")
    if name == "evaluate":
        per = result.per_dataset()
        return _f(sum(d["n"] for d in per.values())), f"{len(per)} datasets", "sentences scored"
    return "", "", ""


def stages_table(results: dict[str, Any]) -> Table:
    table = Table(title=f"b2ner run: warehouse {results['config'].warehouse}")
    for col in ("stage", "rows in", "rows out", "seconds", "note"):
        table.add_column(col, justify="left" if col in ("stage", "note") else "right")
    for name, sec in results["timings"].items():
        rows_in, rows_out, note = stage_rows(name, results.get(name))
        table.add_row(name, rows_in, rows_out, f"{sec:.1f}", note)
    return table


def selection_table(select_result: Any) -> Table:
    table = Table(title=f"selection run {select_result.run_id}: samples per dataset")
    for col in ("dataset", "candidates", "kept after cleaning", "selected"):
        table.add_column(col, justify="left" if col == "dataset" else "right")
    for st in sorted(select_result.stats, key=lambda s: s["dataset"]):
        c = st["cleaning"]
        table.add_row(st["dataset"], _f(c["input"]), _f(c["kept"]), _f(st["selected"]))
    return table


def f1_table(eval_result: Any) -> Table:
    """Zero-shot F1 per dataset, then the per-language averages (unweighted over datasets)."""
    table = Table(title=f"zero-shot F1 ({eval_result.name})")
    for col in ("dataset", "lang", "sentences", "b2ner_f1", "span_f1", "precision", "recall"):
        table.add_column(col, justify="left" if col in ("dataset", "lang") else "right")
    per = eval_result.per_dataset()
    for ds in sorted(per, key=lambda d: (per[d]["lang"], d)):
        r = per[ds]
        table.add_row(
            ds,
            r["lang"],
            _f(r["n"]),
            f"{r['b2ner_f1']:.1f}",
            f"{r['span_f1']:.1f}",
            f"{r['precision']:.1f}",
            f"{r['recall']:.1f}",
        )
    for lang, r in eval_result.per_language().items():
        table.add_row(
            f"average ({len(r['datasets'])} sets)",
            lang,
            "",
            f"{r['b2ner_f1']:.1f}",
            f"{r['span_f1']:.1f}",
            "",
            "",
            style="bold",
        )
    return table


def print_run_summary(results: dict[str, Any], console: Console) -> None:
    """The end of `b2ner run`: stage table, selection per dataset, F1 table, where the outputs are."""
    console.print(stages_table(results))
    if results.get("select") is not None:
        console.print(selection_table(results["select"]))
    if results.get("evaluate") is not None:
        console.print(f1_table(results["evaluate"]))
    paths = results.get("report_paths") or {}
    if paths.get("markdown"):
        console.print(f"report: {paths['markdown']}", markup=False, highlight=False)
    if results.get("train") is not None and not results["config"].ray.log_to_driver:
        console.print(
            "Ray logs: /tmp/ray/session_latest/logs (b2ner run --verbose shows them here)",
            markup=False,
            highlight=False,
        )
    model = (results.get("train") or {}).get("model")
    if model:
        console.print(
            f"model: {model}  (b2ner predict --model {model} --family span-encoder ...)",
            markup=False,
            highlight=False,
        )

"""Selection report: counts before/after per dataset and type, cleaning reasons, coverage per strategy."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from b2ner_common.selection.diversity import STRATEGIES


def coverage_table(stats: Sequence[dict]) -> list[dict]:
    """One row per (dataset, strategy): k, mean and p95 distance to the nearest selected sample."""
    rows = []
    for s in stats:
        for strategy, cov in sorted(s.get("coverage", {}).items()):
            if cov:
                rows.append({"dataset": s["dataset"], "strategy": strategy, **cov})
    return rows


def coverage_summary(stats: Sequence[dict]) -> dict[str, dict[str, float]]:
    """Per strategy: the sample-weighted mean of the per-dataset mean and p95 distances."""
    out: dict[str, dict[str, float]] = {}
    for strategy in STRATEGIES:
        covs = [s["coverage"][strategy] for s in stats if s.get("coverage", {}).get(strategy)]
        if not covs:
            continue
        w = np.array([c["n"] for c in covs], dtype=float)
        out[strategy] = {
            "mean": float(np.average([c["mean"] for c in covs], weights=w)),
            "p95": float(np.average([c["p95"] for c in covs], weights=w)),
            "k": int(sum(c["k"] for c in covs)),
            "n": int(w.sum()),
        }
    return out


def plot_coverage(stats: Sequence[dict], path: str | Path) -> Path | None:
    """Bar chart of mean and p95 distance to the nearest pick, per dataset and strategy (PNG)."""
    rows = coverage_table(stats)
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted({r["dataset"] for r in rows})
    strategies = [s for s in STRATEGIES if any(r["strategy"] == s for r in rows)]
    lookup = {(r["dataset"], r["strategy"]): r for r in rows}
    x = np.arange(len(datasets))
    width = 0.8 / max(1, len(strategies))
    fig, axes = plt.subplots(2, 1, figsize=(max(6, 0.6 * len(datasets) + 2), 7), sharex=True)
    for ax, metric in zip(axes, ("mean", "p95"), strict=True):
        for i, strategy in enumerate(strategies):
            vals = [lookup.get((d, strategy), {}).get(metric, np.nan) for d in datasets]
            ax.bar(x + i * width, vals, width, label=strategy)
        ax.set_ylabel(f"{metric} distance to nearest pick")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend()
    axes[0].set_title("Coverage of the selection (lower is better)")
    axes[1].set_xticks(x + width * (len(strategies) - 1) / 2, datasets, rotation=60, ha="right")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def render_markdown(
    stats: Sequence[dict], run_id: str, notes: Sequence[str] = (), plot_name: str = ""
) -> str:
    """The markdown report of a selection run."""
    stats = sorted(stats, key=lambda s: s["dataset"])
    lines = [f"# Selection run `{run_id}`", ""]
    lines += [f"- {n}" for n in notes]
    total_in = sum(s["cleaning"]["input"] for s in stats)
    total_sel = sum(s["selected"] for s in stats)
    lines += [f"- datasets: {len(stats)}; candidate samples: {total_in}; selected: {total_sel}", ""]
    lines += ["## Cleaning and counts per dataset", ""]
    lines += [
        "| dataset | input | contaminated | exact dup | near dup | kept | budget | selected |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in stats:
        c = s["cleaning"]
        lines.append(
            f"| {s['dataset']} | {c['input']} | {c['contaminated']} | {c['exact_duplicate']} | "
            f"{c['near_duplicate']} | {c['kept']} | {s['budget']} | {s['selected']} |"
        )
    summary = coverage_summary(stats)
    if summary:
        lines += ["", "## Coverage (distance of every kept sample to its nearest selected sample)", ""]
        lines += [
            "Equal sizes per dataset; Euclidean distance between unit embeddings (lower is better).",
            "",
        ]
        lines += ["| strategy | selected | mean | p95 |", "|---|---:|---:|---:|"]
        for strategy, v in summary.items():
            lines.append(f"| {strategy} | {v['k']} | {v['mean']:.4f} | {v['p95']:.4f} |")
        if plot_name:
            lines += ["", f"![coverage]({plot_name})"]
        lines += ["", "| dataset | strategy | k | mean | p95 |", "|---|---|---:|---:|---:|"]
        for r in coverage_table(stats):
            lines.append(
                f"| {r['dataset']} | {r['strategy']} | {r['k']} | {r['mean']:.4f} | {r['p95']:.4f} |"
            )
    lines += ["", "## Per type", ""]
    lines += [
        "`before`: samples containing the type; `kept`: after cleaning; `quota`: stage-1 quota; "
        "`picked for`: picks made for that type; `selected`: selected samples containing it.",
        "",
        "| dataset | type | before | kept | quota | picked for | selected |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for s in stats:
        for t, v in sorted(s["types"].items(), key=lambda kv: (kv[1]["before"], kv[0])):
            lines.append(
                f"| {s['dataset']} | {t} | {v['before']} | {v['after_cleaning']} | {v['quota']} | "
                f"{v['picked_for']} | {v['selected']} |"
            )
    return "\n".join(lines) + "\n"


def write_report(stats: Sequence[dict], out_dir: str | Path, run_id: str, notes: Sequence[str] = ()) -> Path:
    """Write report.md, coverage.png and stats.json into `out_dir`; returns the markdown path."""
    import json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plot = plot_coverage(stats, out / "coverage.png")
    md = render_markdown(stats, run_id, notes, plot.name if plot else "")
    (out / "report.md").write_text(md, encoding="utf-8")
    (out / "stats.json").write_text(json.dumps(list(stats), indent=1, sort_keys=True), encoding="utf-8")
    return out / "report.md"

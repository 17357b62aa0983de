"""The taxonomy report: per-dataset mapping tables and conflict heatmaps before vs after mapping (markdown + PNG)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path

from b2ner_common.taxonomy.conflicts import pair_matrix, summarize
from b2ner_common.taxonomy.mappings import DatasetMapping
from b2ner_common.taxonomy.model import Taxonomy


def _md_escape(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def mapping_tables(
    mappings: Mapping[str, DatasetMapping], taxonomy: Taxonomy, datasets: Iterable[str] | None = None
) -> str:
    """Markdown: one table per dataset (raw label -> English name, Chinese name, note)."""
    seen, parts = set(), []
    names = list(datasets) if datasets is not None else sorted({m.dataset for m in mappings.values()})
    for name in names:
        m = mappings.get(name)
        if m is None or m.path in seen:
            continue
        seen.add(m.path)
        parts.append(f"### {m.dataset} ({m.lang}, {m.role})\n\n{_md_escape(m.source)}\n")
        parts.append("| raw label | type | 中文 | note |\n|---|---|---|---|")
        for raw, lm in m.labels.items():
            t = taxonomy.find(lm.type) if lm.type else None
            parts.append(
                f"| `{_md_escape(raw)}` | {t.en if t else '(not kept)'} | {t.zh if t else ''} | {_md_escape(lm.note)} |"
            )
        parts.append("")
    return "\n".join(parts)


def plot_heatmaps(rows: list[Mapping], path: Path) -> Path:
    """PNG with the dataset x dataset type-conflict rate, raw labels (left) vs mapped types (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = sorted({r["dataset_a"] for r in rows} | {r["dataset_b"] for r in rows})
    n = max(len(names), 1)
    fig, axes = plt.subplots(1, 2, figsize=(2 * (4 + 0.32 * n), 3.5 + 0.32 * n), constrained_layout=True)
    for ax, mode in zip(axes, ("raw", "mapped"), strict=True):
        order, matrix = pair_matrix(rows, mode)
        pos = {d: i for i, d in enumerate(order)}
        full = np.full((n, n), np.nan)
        for a in names:
            for b in names:
                if a in pos and b in pos:
                    full[names.index(a), names.index(b)] = matrix[pos[a]][pos[b]]
        # grey: the pair never annotates the same span (no rate), unlike white = a 0 rate
        cmap = matplotlib.colormaps["Reds"].with_extremes(bad="#d9d9d9")
        im = ax.imshow(np.ma.masked_invalid(full), vmin=0, vmax=1, cmap=cmap)
        ax.set_xticks(range(n), names, rotation=90, fontsize=7)
        ax.set_yticks(range(n), names, fontsize=7)
        ax.set_xlabel("dataset B (annotates the occurrence)")
        ax.set_ylabel("dataset A (mention source)")
        ax.set_title(f"type-conflict rate, {mode} labels (grey: no same-span pair)")
    fig.colorbar(im, ax=axes, shrink=0.6, label="type conflicts / same-span co-annotations")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _pct(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def render_report(
    rows: list[Mapping],
    mappings: Mapping[str, DatasetMapping],
    taxonomy: Taxonomy,
    *,
    heatmap: str = "conflict_heatmap.png",
    datasets: Iterable[str] | None = None,
    top: int = 15,
) -> str:
    """The markdown report text (the heatmap file is referenced by name)."""
    summ = summarize(rows)
    lines = [
        f"# Taxonomy report ({taxonomy.version}: {len(taxonomy)} types)",
        "",
        "Cross-dataset conflict screening: every annotated mention of dataset A is looked up in the texts of "
        "dataset B and classified against B's annotation (see docs/taxonomy.md). `raw` compares raw label "
        "strings, `mapped` compares universal types (equal or hierarchically compatible).",
        "",
        "## Before vs after mapping",
        "",
        "| mode | mentions | agree | type conflict | boundary conflict | missing | type-conflict rate | conflict rate |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for mode in ("raw", "mapped"):
        t = summ.get(mode)
        if t:
            lines.append(
                f"| {mode} | {t['mentions']:,} | {t['agree']:,} | {t['type_conflict']:,} | "
                f"{t['boundary_conflict']:,} | {t['missing']:,} | {_pct(t['type_conflict_rate'])} | "
                f"{_pct(t['conflict_rate'])} |"
            )
    lines += [
        "",
        "type-conflict rate = type conflicts / (agree + type conflicts): of the occurrences both datasets "
        "annotate with the same span, the share with different labels. Boundary conflicts and missing "
        "annotations come from annotation guidelines; a mapping cannot change them.",
        "",
        f"![type-conflict heatmap]({heatmap})",
        "",
    ]
    for mode in ("mapped", "raw"):
        ranked = [r for r in rows if r["mode"] == mode and r["type_conflict"]]
        ranked.sort(key=lambda r: -r["type_conflict"])
        if not ranked:
            continue
        lines += [
            f"## Top type conflicts ({mode})",
            "",
            "| A | label in A | B | label in B | type conflicts | same span | example |",
            "|---|---|---|---|---:|---:|---|",
        ]
        for r in ranked[:top]:
            ex = next(
                (e for e in r["examples"] if e.startswith("type_conflict")),
                r["examples"][0] if r["examples"] else "",
            )
            lines.append(
                f"| {r['dataset_a']} | {_md_escape(r['label_a'])} | {r['dataset_b']} | {_md_escape(r['label_b'])} | "
                f"{r['type_conflict']:,} | {r['agree'] + r['type_conflict']:,} | {_md_escape(ex)} |"
            )
        lines.append("")
    lines += ["## Per-dataset mappings", "", mapping_tables(mappings, taxonomy, datasets)]
    return "\n".join(lines)


def write_report(
    rows: list[Mapping],
    mappings: Mapping[str, DatasetMapping],
    taxonomy: Taxonomy,
    out_dir: str | Path,
    datasets: Iterable[str] | None = None,
) -> Path:
    """Write report.md and conflict_heatmap.png into `out_dir`; returns the markdown path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plot_heatmaps(list(rows), out / "conflict_heatmap.png")
    md = out / "report.md"
    md.write_text(render_report(list(rows), mappings, taxonomy, datasets=datasets) + "\n", encoding="utf-8")
    return md


__all__ = ["mapping_tables", "plot_heatmaps", "render_report", "write_report"]

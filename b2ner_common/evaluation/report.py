"""The evaluation report: `report.md`, `report.png` and `scores.json` of `EvalResult`s.

Per dataset b2ner/span F1 (mean +/- sd over runs); per language (our protocol) or the official group,
sub-group and overall averages (official protocol, `official.py`); the English average next to the
published zero-shot numbers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from b2ner_common.evaluation.official import canonical_dataset
from b2ner_common.ood import OOD_DATASETS

if TYPE_CHECKING:
    from b2ner_common.evaluation.benchmark import EvalResult

# DESIGN.md: published zero-shot averages (F1 x 100) on the 7 English OOD test sets.
PUBLISHED_EN_AVG: dict[str, float] = {
    "B2NER": 72.1,
    "GNER-T5-xxl": 69.1,
    "GLiNER-L": 60.9,
    "KnowCoder-7B": 60.1,
    "GPT-4": 60.1,
    "GoLLIE-7B": 58.4,
    "UniNER-7B": 53.4,
}


def _pm(mean: float, sd: float, seeds: int) -> str:
    return f"{mean:.1f} ± {sd:.1f}" if seeds > 1 else f"{mean:.1f}"


def _official_lines(groups: Sequence[dict], runs: int) -> list[str]:
    """The official averages as a markdown table; a group with missing official sets says which."""
    lines = [
        "### Official aggregation (B2NER `src/calculate_f1.py`)",
        "",
        "| group | b2ner F1 | sets averaged | missing official sets | notes |",
        "|---|---:|---:|---|---|",
    ]
    for g in groups:
        f1 = "n/a" if g["f1"] is None else _pm(g["f1"], g["f1_sd"], runs)
        if g["printed_by_official_script"]:
            f1 = f"**{f1}**"
        notes = []
        if not g["printed_by_official_script"]:
            notes.append("computed, not printed, by the official script")
        if g["extra"]:
            notes.append(f"not official test sets: {', '.join(g['extra'])}")
        if g["excluded"]:
            notes.append(f"excluded as in the official code: {', '.join(g['excluded'])}")
        missing = ", ".join(g["missing"]) if g["missing"] else "none"
        lines.append(f"| {g['name']} | {f1} | {len(g['datasets'])} | {missing} | {'; '.join(notes)} |")
    if any(g["missing"] for g in groups):
        lines += [
            "",
            "A group with missing official sets averages only the sets scored here: it is not comparable "
            "with the published group average.",
        ]
    return lines


def write_report(results: Sequence[EvalResult], out_dir: str | Path, *, note: str = "") -> dict[str, Path]:
    """Markdown + PNG bar chart + JSON of `results` next to the published English averages."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    en_sets = set(OOD_DATASETS["en"])
    lines = ["# OOD NER evaluation", ""]
    if note:
        lines += [note, ""]
    for res in results:
        per_ds, per_lang = res.per_dataset(), res.per_language()
        seeds = max((v["seeds"] for v in per_ds.values()), default=1)
        runs = f"Runs: {seeds} (official protocol)." if res.protocol == "official" else f"Seeds: {seeds}."
        lines += [
            f"## {res.name}",
            "",
            f"{runs} F1 x 100; b2ner = B2NER's string-pair F1, span = strict offsets + type.",
            "",
            "| dataset | lang | sentences | b2ner F1 | span F1 | P | R | parse problems |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for ds, v in sorted(per_ds.items(), key=lambda kv: (kv[1]["lang"], kv[0])):
            lines.append(
                f"| {ds} | {v['lang']} | {v['n']} | {_pm(v['b2ner_f1'], v['b2ner_f1_sd'], seeds)} | "
                f"{_pm(v['span_f1'], v['span_f1_sd'], seeds)} | {v['precision']:.1f} | {v['recall']:.1f} | "
                f"{v['parse_problems']} |"
            )
        if res.protocol == "official":
            lines += ["", *_official_lines(res.official_groups(), seeds)]
        else:
            for lang, v in per_lang.items():
                lines.append(
                    f"| **{lang} average** ({len(v['datasets'])} sets) | {lang} | | "
                    f"**{_pm(v['b2ner_f1'], v['b2ner_f1_sd'], seeds)}** | {_pm(v['span_f1'], v['span_f1_sd'], seeds)} | | | |"
                )
        lines.append("")
    lines += [
        "## Next to the published numbers (English average, 7 OOD sets, zero-shot)",
        "",
        "| model | English average F1 | source |",
        "|---|---:|---|",
    ]
    bars: list[tuple[str, float, str]] = []
    for res in results:
        en = res.per_language().get("en")
        if en:
            covered = en_sets & {canonical_dataset(d) for d in en["datasets"]}
            tag = "this run" + ("" if covered == en_sets else f" ({len(covered)} of 7 sets)")
            lines.append(f"| **{res.name}** | **{en['b2ner_f1']:.1f}** | {tag} |")
            bars.append((res.name, en["b2ner_f1"], "ours"))
    for model, score in PUBLISHED_EN_AVG.items():
        lines.append(f"| {model} | {score:.1f} | published (B2NER paper, official test splits) |")
        bars.append((model, score, "published"))
    lines += [
        "",
        "Published numbers are on the official OOD test splits; this run uses the splits named above "
        "(the test splits are held out from the shared corpora), so the comparison is indicative.",
        "",
        "![scores](report.png)",
        "",
    ]
    md = out / "report.md"
    md.write_text("\n".join(lines), encoding="utf-8")
    (out / "scores.json").write_text(json.dumps([r.as_dict() for r in results], indent=2), encoding="utf-8")

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [1, 1.4]})
    bars.sort(key=lambda b: b[1])
    axes[0].barh(
        [b[0] for b in bars],
        [b[1] for b in bars],
        color=["tab:orange" if b[2] == "ours" else "tab:gray" for b in bars],
    )
    axes[0].set_xlabel("English OOD average F1")
    axes[0].set_title("ours vs published")
    for res_i, res in enumerate(results):
        per_ds = res.per_dataset()
        names = sorted(per_ds)
        width = 0.8 / max(1, len(results))
        xs = [i + res_i * width for i in range(len(names))]
        axes[1].bar(
            xs,
            [per_ds[n]["b2ner_f1"] for n in names],
            width,
            label=res.name,
            yerr=[per_ds[n]["b2ner_f1_sd"] for n in names],
        )
        axes[1].set_xticks([i + 0.4 - width / 2 for i in range(len(names))], names, rotation=45, ha="right")
    axes[1].set_ylabel("b2ner F1")
    axes[1].set_title("per dataset (mean ± sd over seeds)")
    if results:
        axes[1].legend()
    fig.tight_layout()
    png = out / "report.png"
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return {"markdown": md, "png": png, "json": out / "scores.json"}

"""The official B2NER evaluation protocol: a fixed label order and the official score aggregation.

What the official code does (UmeanNever/B2NER; docs/evaluation.md "The official protocol" has the details):
- `src/b2ner_dataset.py`: at test time the prompt lists a dataset's labels in the order of its
  `labels.json`, the same for every sentence; dropout, negatives and shuffling apply to training only.
- `configs/ml_configs/bilingual_full/test_tasks.json`: the OOD test sets, grouped by task and language
  (`NER_en`: 7 sets, `NER_zh`: 7 sets).
- `src/calculate_f1.py`: one F1 per dataset; per (task, language) group the unweighted mean over its
  datasets except two excluded ones; an overall mean over every dataset of every group (not a mean of the
  group means); Chinese "unseen" and "mix" sub-averages are computed there but not printed.

Here: plain functions over {dataset: F1} mappings. Dataset names are compared in our spelling
(`canonical_dataset`), so B2NER prediction files (`CrossNER_AI`, `CBLUE`) and our tables (`crossner_ai`,
`cmeee`) aggregate alike. Where an official group names a dataset that was not scored, the result lists it
as missing: an average over fewer sets is never passed off as the official one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from b2ner_common.metrics import mean_sd

TASK = "NER"

# The official OOD test sets per (task, language) group, in the official spelling
# (configs/ml_configs/bilingual_full/test_tasks.json; bilingual_b2nerd_only lists the same sets).
OFFICIAL_TEST_SETS: dict[str, tuple[str, ...]] = {
    "NER_en": (
        "CrossNER_AI",
        "CrossNER_literature",
        "CrossNER_music",
        "CrossNER_politics",
        "CrossNER_science",
        "mit-movie",
        "mit-restaurant",
    ),
    "NER_zh": ("CAIL2021", "CCKS2021address", "CLUENER", "CBLUE", "math-high", "weibo", "zh-ontonotes"),
}

# Left out of every average by src/calculate_f1.py (scored and shown, never averaged).
OFFICIAL_EXCLUDED: tuple[str, ...] = ("math-junior", "CAIL2022")

# Chinese sub-averages src/calculate_f1.py computes but does not print: test sets whose entity types
# the training data never has ("unseen") and sets mixing seen and new types ("mix"). The official list
# spells CMeEE "CMeEEV2" while the test config names the same corpus "CBLUE", so in official runs the
# mix average never contained it; here both spellings are one dataset and it is counted.
OFFICIAL_SUBGROUPS: dict[str, tuple[str, ...]] = {
    "NER_zh unseen": ("CAIL2021", "math-high", "CCKS2021address"),
    "NER_zh mix": ("CLUENER", "CMeEEV2", "weibo", "zh-ontonotes"),
}

# Official spellings whose lower-cased, underscored form is not our dataset name.
_ALIASES: dict[str, str] = {
    "ccks2021address": "ccks2021_address",
    "cblue": "cmeee",
    "cmeeev2": "cmeee",
    "zh_ontonotes": "zh_ontonotes4",  # OntoNotes 4.0 Chinese (our zh_ontonotes4 mapping notes the alias)
}


def canonical_dataset(name: str) -> str:
    """Our dataset name for an official (or our own) one: CrossNER_AI -> crossner_ai, CBLUE -> cmeee."""
    n = name.strip().lower().replace("-", "_").replace(" ", "_")
    return _ALIASES.get(n, n)


def group_of(lang: str, task: str = TASK) -> str:
    """The official group key of a dataset: task and language, as `NER_en`."""
    return f"{task}_{lang}"


def fixed_label_order(
    dataset: str, label_names: Sequence[str], order: Sequence[str] | None = None
) -> list[str]:
    """The one label order a dataset's prompts use under the official protocol.

    Without `order`, the dataset's label set as given (the taxonomy mapping file's order). With `order`
    (e.g. the names of B2NERD's `labels.json` for that dataset), that order; it must hold exactly the
    dataset's labels. Raises ValueError naming the dataset and the labels that differ.
    """
    if order is None:
        return list(label_names)
    given, expected = list(order), set(label_names)
    dupes = sorted({n for n in given if given.count(n) > 1})
    unknown, absent = sorted(set(given) - expected), sorted(expected - set(given))
    if dupes or unknown or absent:
        raise ValueError(
            f"evaluate.label_orders.{dataset}: must list each of the dataset's {len(expected)} labels once"
            + (f"; not labels of it: {unknown}" if unknown else "")
            + (f"; missing: {absent}" if absent else "")
            + (f"; repeated: {dupes}" if dupes else "")
        )
    return given


@dataclass
class GroupScore:
    """One official average: its F1 (None when no member was scored) and what went into it."""

    name: str
    f1: float | None
    datasets: list[str]  # averaged (our names)
    missing: list[str] = field(default_factory=list)  # official members not scored (our names)
    extra: list[str] = field(default_factory=list)  # averaged, but not an official member
    excluded: list[str] = field(default_factory=list)  # scored, left out as the official code does
    printed: bool = True  # False: computed by the official script but not in its report

    @property
    def complete(self) -> bool:
        return not self.missing

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "f1": self.f1,
            "datasets": self.datasets,
            "missing": self.missing,
            "extra": self.extra,
            "excluded": self.excluded,
            "complete": self.complete,
            "printed_by_official_script": self.printed,
        }


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def aggregate_official(
    f1_by_dataset: Mapping[str, float], lang_by_dataset: Mapping[str, str]
) -> list[GroupScore]:
    """The official averages of one run: per (task, language) group, the Chinese sub-averages, overall.

    `f1_by_dataset`: one F1 per scored dataset (any scale; official or our names); `lang_by_dataset`: each
    dataset's language. As in the official script, a group averages every scored dataset of its language
    except the excluded ones (a dataset outside the official test sets is averaged and listed as `extra`),
    and the overall average is the mean over all those datasets, not over the group means. Official
    members that were not scored are listed as `missing`. Returns the groups (official ones first, then
    any other language), the sub-averages, and last the group named "overall".
    """
    excluded = {canonical_dataset(d) for d in OFFICIAL_EXCLUDED}
    scores = {canonical_dataset(d): f for d, f in f1_by_dataset.items()}
    langs = {canonical_dataset(d): lang for d, lang in lang_by_dataset.items()}
    unknown = sorted(d for d in scores if d not in langs)
    if unknown:
        raise ValueError(f"official aggregation: no language for {unknown}")
    members = {g: [canonical_dataset(d) for d in names] for g, names in OFFICIAL_TEST_SETS.items()}
    official_all = {d for names in members.values() for d in names}

    by_group: dict[str, list[str]] = {g: [] for g in members}
    for d in sorted(scores):
        by_group.setdefault(group_of(langs[d]), []).append(d)

    out: list[GroupScore] = []
    for g, scored in by_group.items():
        kept = [d for d in scored if d not in excluded]
        official = members.get(g, [])
        out.append(
            GroupScore(
                g,
                _mean([scores[d] for d in kept]),
                kept,
                missing=[d for d in official if d not in scores],
                extra=[d for d in kept if d not in official],
                excluded=[d for d in scored if d in excluded],
            )
        )
    for g, names in OFFICIAL_SUBGROUPS.items():
        wanted = list(dict.fromkeys(canonical_dataset(d) for d in names))
        got = [d for d in wanted if d in scores]
        out.append(
            GroupScore(
                g,
                _mean([scores[d] for d in got]),
                got,
                missing=[d for d in wanted if d not in scores],
                printed=False,
            )
        )
    kept = [d for d in sorted(scores) if d not in excluded]
    out.append(
        GroupScore(
            "overall",
            _mean([scores[d] for d in kept]),
            kept,
            missing=sorted(d for d in official_all if d not in scores),
            extra=[d for d in kept if d not in official_all],
            excluded=sorted(d for d in scores if d in excluded),
        )
    )
    return out


def official_over_runs(
    runs: Sequence[tuple[Mapping[str, float], Mapping[str, str]]],
) -> list[dict]:
    """The official averages over runs (training seeds): each run aggregated alone, then mean +/- sd.

    `runs`: per run, ({dataset: F1}, {dataset: lang}). The official README averages a metric over runs at
    one epoch; so each group's F1 is computed per run first. Returns one dict per group: the fields of
    `GroupScore.as_dict` of the first run (membership) plus `f1` (mean), `f1_sd` and `runs`.
    """
    per_run = [{g.name: g for g in aggregate_official(scores, langs)} for scores, langs in runs]
    names = list(dict.fromkeys(name for groups in per_run for name in groups))
    out = []
    for name in names:
        seen = [groups[name] for groups in per_run if name in groups]
        values = [g.f1 for g in seen if g.f1 is not None]
        mean, sd = mean_sd(values) if values else (None, None)
        row = seen[0].as_dict()
        # A dataset scored in only some runs is missing from the others: the union is reported.
        row["missing"] = sorted({d for g in seen for d in g.missing})
        row["complete"] = not row["missing"]
        row.update(f1=mean, f1_sd=sd, runs=len(values))
        out.append(row)
    return out

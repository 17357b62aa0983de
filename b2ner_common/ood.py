"""The out-of-domain benchmark of the B2NER protocol: evaluation only, never training data.

One definition for evaluation (which datasets to score, per language) and selection (what to exclude and
decontaminate against). The ingest catalog's `role: ood_dev` marks the same corpora; this list is the
fallback when a catalog is not available and the guard that holds even when a user catalog forgets it.
"""

from __future__ import annotations

OOD_DATASETS: dict[str, list[str]] = {
    "en": [
        "crossner_ai",
        "crossner_literature",
        "crossner_music",
        "crossner_politics",
        "crossner_science",
        "mit_movie",
        "mit_restaurant",
    ],
    "zh": ["weibo", "cluener", "ccks2021_address"],
}

OOD_DEV_DATASETS: tuple[str, ...] = tuple(d for names in OOD_DATASETS.values() for d in names)

"""B2NER prompt and answer format (interoperable with the published B2NER LoRA adapters).

The templates are golden strings (tests/test_prompts_instruction.py pins them character for character).
Training-time label handling (negatives, dropout, shuffling) is `build_instruction`, further down.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

EN_TEMPLATE = (
    "Given the label set of entities, please recognize all the entities in the text. The answer format should be "
    '"entity label: entity; entity label: entity". \nLabel Set: {labels_str} \n\nText: {text} \nAnswer:'
)
ZH_TEMPLATE = (
    '给定实体的标签范围，请识别文本中属于这些标签的所有实体。答案格式为 "实体标签: 实体; 实体标签: 实体"。'
    "\n标签范围: {labels_str}\n\n文本: {text} \n答案:"
)
NONE_ANSWER = "None"
# Languages whose samples get the Chinese template.
ZH_LANGS = frozenset({"zh"})


def format_prompt(text: str, labels: Sequence[str], lang: str = "en") -> str:
    """The zero-shot prompt for `text` with label names `labels` (joined by ", ")."""
    template = ZH_TEMPLATE if lang in ZH_LANGS else EN_TEMPLATE
    return template.format(labels_str=", ".join(labels), text=text)


def format_answer(pairs: Sequence[tuple[str, str]]) -> str:
    """Target text for (label, entity text) pairs in text order: ' label: entity; label: entity' or ' None'."""
    if not pairs:
        return " " + NONE_ANSWER
    return " " + "; ".join(f"{label}: {mention}" for label, mention in pairs)


# ------------------------------------------------------------------ training-time instruction building
#
# B2NER's label handling (its dataset builder, reproduced in behaviour, not code): when a dataset has
# more labels than `max_labels`, the prompt keeps the sample's positive labels and fills up with random
# labels of the dataset; every label in the prompt is then dropped with probability `drop_p` (the
# entities of a dropped label leave the target; at least one label survives), and the labels are
# shuffled. Prompts with definitions use B2NER's "zero-shot-with-description" templates.

EN_DEF_TEMPLATE = (
    "Given the label set of entities and their descriptions, please recognize all the entities in the text. "
    'The answer format should be "entity label: entity; entity label: entity". \nLabel Set: {labels_str} '
    "\nLabel Description: {definitions_str} \n\nText: {text} \nAnswer:"
)
ZH_DEF_TEMPLATE = (
    '给定实体的标签范围以及对每个标签的描述，请识别文本中属于这些标签的所有实体。答案格式为 "实体标签: 实体; 实体标签: 实体"。'
    "\n标签范围: {labels_str}\n标签描述: {definitions_str}\n\n文本: {text} \n答案:"
)
MEANS = {"en": "means", "zh": "是指"}

LabelNamer = Callable[[str, str], str]
"""(universal type English name, language) -> the label name shown in a prompt of that language."""


def format_prompt_with_definitions(
    text: str, labels: Sequence[str], definitions: Mapping[str, str], lang: str = "en"
) -> str:
    """Prompt listing each label's definition: `label means "definition"` joined by "; ".

    Labels without a definition are listed in the label set but get no description entry.
    """
    zh = lang in ZH_LANGS
    means = MEANS["zh" if zh else "en"]
    defs = "; ".join(f'{lb} {means} "{definitions[lb]}"' for lb in labels if definitions.get(lb))
    template = ZH_DEF_TEMPLATE if zh else EN_DEF_TEMPLATE
    return template.format(labels_str=", ".join(labels), definitions_str=defs, text=text)


def instruction_rng(seed: int, epoch: int, sample_id: str) -> random.Random:
    """The RNG of one sample in one epoch: independent of row order, partitioning and worker count.

    Pass epoch=0 for every epoch to keep one fixed instruction per sample (no per-epoch re-sampling).
    """
    h = hashlib.blake2b(f"{seed}\x1f{epoch}\x1f{sample_id}".encode(), digest_size=8)
    return random.Random(int.from_bytes(h.digest(), "little"))


def _field(obj: Any, name: str, default: Any = None) -> Any:
    return obj.get(name, default) if isinstance(obj, Mapping) else getattr(obj, name, default)


def build_instruction(
    sample: Any,
    label_set: Sequence[str],
    rng: random.Random,
    *,
    max_labels: int = 18,
    drop_p: float = 0.1,
    definitions: Mapping[str, str] | None = None,
    lang: str | None = None,
    label_name: LabelNamer | None = None,
    negative_pool: Sequence[str] = (),
) -> tuple[str, str]:
    """One training (prompt, target) pair for a silver sample, B2NER style.

    Args:
        sample: a `Sample` or a silver/samples row dict; `entities[].type` is the universal type's
            English name (entities with an empty type are not annotated for training and are skipped).
        label_set: the dataset's universal labels (English names). Types of the sample's entities
            that are missing from it are added (a silver row should never need this).
        rng: per-sample RNG, normally `instruction_rng(seed, epoch, sample_id)`.
        max_labels: at most this many labels in the prompt (B2NER: 18); positives are kept first.
        drop_p: probability of dropping each prompt label (and its entities from the target).
        definitions: {English type name: definition}; when given, the definitions template is used.
        lang: prompt language; defaults to the sample's `lang` ("zh" -> Chinese template).
        label_name: maps (English type name, lang) -> displayed name (e.g. the taxonomy's Chinese
            names for zh); identity when None.
        negative_pool: extra labels (English names) that may fill the prompt as negatives up to
            `max_labels` (e.g. types of related datasets). Empty by default: a label the dataset
            does not annotate may still occur unannotated in its text, which would teach misses.

    Returns:
        (prompt, target): the prompt ends with "Answer:"/"答案:"; the target is
        " label: entity; label: entity" in text order (start, then end), or " None".
    """
    lang = lang or _field(sample, "lang", "en") or "en"
    text = _field(sample, "text")
    entities = [e for e in (_field(sample, "entities") or []) if _field(e, "type")]
    positives = list(dict.fromkeys(_field(e, "type") for e in entities))
    labels = list(dict.fromkeys([*label_set, *positives]))

    if len(labels) > max_labels or negative_pool:
        keep = positives if len(positives) <= max_labels else rng.sample(positives, max_labels)
        candidates = [lb for lb in dict.fromkeys([*labels, *negative_pool]) if lb not in keep]
        chosen = keep + rng.sample(candidates, min(len(candidates), max_labels - len(keep)))
        # Keep the dataset's own order before shuffling so the RNG stream is reproducible.
        order = {lb: i for i, lb in enumerate(dict.fromkeys([*labels, *negative_pool]))}
        labels = sorted(chosen, key=order.__getitem__)

    if drop_p > 0 and labels:
        kept = [lb for lb in labels if rng.random() >= drop_p]
        labels = kept or [rng.choice(labels)]
    rng.shuffle(labels)

    shown = set(labels)
    name = (lambda t: label_name(t, lang)) if label_name else (lambda t: t)
    pairs = [
        (name(_field(e, "type")), _field(e, "text"))
        for e in sorted(entities, key=lambda e: (_field(e, "start"), _field(e, "end")))
        if _field(e, "type") in shown
    ]
    names = [name(lb) for lb in labels]
    if definitions:
        defs = {name(lb): definitions[lb] for lb in labels if definitions.get(lb)}
        prompt = format_prompt_with_definitions(text, names, defs, lang)
    else:
        prompt = format_prompt(text, names, lang)
    return prompt, format_answer(pairs)

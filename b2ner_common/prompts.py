"""B2NER prompt and answer format (interoperable with the published B2NER LoRA adapters).

The templates are golden strings (tests/test_prompts.py pins them character for character).
Training-time label handling (negatives, dropout, shuffling) is `build_instruction`, further down.
"""

from __future__ import annotations

from collections.abc import Sequence

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

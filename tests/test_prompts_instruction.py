"""build_instruction: the exact B2NER training format, label sampling, dropout, determinism."""

from __future__ import annotations

import random
from collections import Counter

from b2ner_common.prompts import (
    build_instruction,
    format_prompt_with_definitions,
    instruction_rng,
)
from b2ner_common.schema import Entity, Sample


class _NoShuffle(random.Random):
    """Keeps list order so a golden string can pin the whole format."""

    def shuffle(self, x, *args, **kwargs):  # noqa: D401 - test double
        return None


def _conll_sample() -> Sample:
    text = "Obama visited Paris in June 2015 with the United Nations delegation."
    ents = [
        Entity(23, 32, "DATE", "June 2015", "date or period"),
        Entity(0, 5, "PER", "Obama", "person"),
        Entity(14, 19, "LOC", "Paris", "location"),
        Entity(42, 56, "ORG", "United Nations", "organization"),
    ]
    return Sample("s1", "conll2003", "train", "en", text, ents, "train.txt:1")


LABELS = ["person", "location", "organization", "date or period", "miscellaneous"]


def test_prompts_instruction_golden_english():
    prompt, target = build_instruction(_conll_sample(), LABELS, _NoShuffle(0), drop_p=0.0)
    assert prompt == (
        "Given the label set of entities, please recognize all the entities in the text. The answer format "
        'should be "entity label: entity; entity label: entity". \nLabel Set: person, location, organization, '
        "date or period, miscellaneous \n\nText: Obama visited Paris in June 2015 with the United Nations "
        "delegation. \nAnswer:"
    )
    # Text order (by start offset), not annotation order; one leading space like B2NER's targets.
    assert (
        target == " person: Obama; location: Paris; date or period: June 2015; organization: United Nations"
    )
    # What the model sees in training is prompt + target (+ EOS): "Answer: person: Obama; ...".
    assert (prompt + target).endswith(
        "\nAnswer: person: Obama; location: Paris; date or period: June 2015; organization: United Nations"
    )


def test_prompts_instruction_golden_chinese_with_names():
    text = "浙商银行企业信贷部叶老桂博士则从另一个角度进行了解读。"
    row = {
        "sample_id": "z1",
        "lang": "zh",
        "text": text,
        "entities": [
            {"start": 8, "end": 11, "label": "PER", "text": "叶老桂", "type": "person"},
            {"start": 0, "end": 4, "label": "ORG", "text": "浙商银行", "type": "company"},
        ],
    }
    zh = {"person": "人名", "company": "组织机构名->公司", "location": "地名"}
    prompt, target = build_instruction(
        row, ["person", "company", "location"], _NoShuffle(0), drop_p=0.0, label_name=lambda t, lang: zh[t]
    )
    assert prompt == (
        '给定实体的标签范围，请识别文本中属于这些标签的所有实体。答案格式为 "实体标签: 实体; 实体标签: 实体"。'
        f"\n标签范围: 人名, 组织机构名->公司, 地名\n\n文本: {text} \n答案:"
    )
    assert target == " 组织机构名->公司: 浙商银行; 人名: 叶老桂"


def test_prompts_instruction_none_answer_and_definitions():
    s = Sample("s2", "d", "train", "en", "Nothing to see here.", [], "f:1")
    defs = {"person": "a human being", "location": "a place"}
    prompt, target = build_instruction(s, ["person", "location"], _NoShuffle(0), drop_p=0.0, definitions=defs)
    assert target == " None"
    assert prompt == format_prompt_with_definitions(
        "Nothing to see here.", ["person", "location"], defs, "en"
    )
    assert (
        'Label Set: person, location \nLabel Description: person means "a human being"; location means '
        '"a place" \n\nText: Nothing to see here. \nAnswer:' in prompt
    )


def test_prompts_instruction_deterministic_per_seed_and_epoch():
    s = _conll_sample()
    many = [f"type {i}" for i in range(40)] + LABELS
    a = build_instruction(s, many, instruction_rng(7, 0, s.sample_id))
    b = build_instruction(s, many, instruction_rng(7, 0, s.sample_id))
    assert a == b
    outs = {build_instruction(s, many, instruction_rng(7, ep, s.sample_id)) for ep in range(5)}
    assert len(outs) > 1  # a new epoch re-samples negatives / order


def test_prompts_instruction_label_cap_keeps_positives_and_adds_negatives():
    s = _conll_sample()
    many = [f"type {i}" for i in range(40)] + LABELS
    for ep in range(30):
        prompt, target = build_instruction(s, many, instruction_rng(1, ep, "x"), max_labels=18, drop_p=0.0)
        shown = prompt.split("Label Set: ")[1].split(" \n\nText:")[0].split(", ")
        assert len(shown) == 18 == len(set(shown))
        assert {"person", "location", "organization", "date or period"} <= set(shown)
        assert target.count(";") == 3


def test_prompts_instruction_dropout_removes_entities_of_dropped_labels():
    s = _conll_sample()
    drops = Counter()
    n = 400
    for ep in range(n):
        prompt, target = build_instruction(s, LABELS, instruction_rng(3, ep, "s1"), drop_p=0.3)
        shown = set(prompt.split("Label Set: ")[1].split(" \n\nText:")[0].split(", "))
        assert shown, "at least one label survives dropout"
        for e in s.entities:
            present = f"{e.type}: {e.text}" in target
            assert present == (e.type in shown)
            drops[e.type] += e.type not in shown
        if not any(e.type in shown for e in s.entities):
            assert target == " None"
    rate = sum(drops.values()) / (4 * n)
    assert 0.22 < rate < 0.38  # ~drop_p


def test_prompts_instruction_negative_pool_fills_up_to_cap():
    s = _conll_sample()
    pool = [f"pool {i}" for i in range(30)]
    prompt, _ = build_instruction(
        s, LABELS, instruction_rng(0, 0, "s1"), max_labels=10, drop_p=0.0, negative_pool=pool
    )
    shown = prompt.split("Label Set: ")[1].split(" \n\nText:")[0].split(", ")
    assert len(shown) == 10 and any(x.startswith("pool ") for x in shown)

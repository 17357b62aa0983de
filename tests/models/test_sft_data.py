"""SFT data: label masking, packing without cross-attention, the per-worker step plan."""

from __future__ import annotations

import pytest

from b2ner_common.models.llm.sft_data import (
    IGNORE_INDEX,
    Example,
    collate_packed,
    collate_padded,
    encode_example,
    encode_rows,
    global_batch_rows,
    pack,
    plan_step,
)
from b2ner_common.prompts import build_instruction, instruction_rng
from b2ner_common.schema import Entity, Sample


@pytest.fixture(scope="module")
def tiny(tiny_llm_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llm_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_llm_dir).eval()
    return model, tok


def test_sft_label_masking_covers_target_and_eos_only(tiny):
    _, tok = tiny
    s = Sample(
        "a",
        "d",
        "train",
        "en",
        "Barack Obama visited Paris.",
        [Entity(0, 12, "PER", "Barack Obama", "person")],
        "f:1",
    )
    prompt, target = build_instruction(s, ["person", "location"], instruction_rng(0, 0, "a"), drop_p=0.0)
    ex = encode_example(tok, prompt, target, max_len=512)
    n_prompt = len(tok(prompt)["input_ids"])
    assert ex.labels[:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert ex.labels[n_prompt:] == ex.input_ids[n_prompt:]
    assert ex.input_ids[-1] == tok.eos_token_id
    assert tok.decode(ex.input_ids[n_prompt:-1]) == target
    assert ex.input_ids[:n_prompt] == tok(prompt)["input_ids"]  # the prompt exactly as inference tokenizes it
    assert not ex.truncated


def test_sft_encode_truncates_end_and_skips_prompt_only(tiny):
    _, tok = tiny
    ex = encode_example(tok, "Text: a b c \nAnswer:", " person: a b c", max_len=8)
    assert ex is None or (len(ex) == 8 and ex.truncated)
    assert encode_example(tok, "Text: " + "word " * 200 + "\nAnswer:", " None", max_len=32) is None


def test_sft_pack_first_fit_decreasing_bins():
    lengths = [30, 70, 20, 50, 50, 10, 90]
    bins = pack(lengths, 100)
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 100 for b in bins)
    assert len(bins) == 4  # 320 tokens need >= 4 rows of 100


def test_sft_packed_logits_equal_unpacked(tiny, sft_kit):
    """Packed examples must not attend to each other: per-example logits match separate forwards."""
    import torch

    model, tok = tiny
    exs = encode_rows(sft_kit._rows(3), tok, seed=0, epoch=0, max_len=256)
    packed = collate_packed([exs], tok.pad_token_id)
    with torch.no_grad():
        out = model(
            input_ids=packed["input_ids"], position_ids=packed["position_ids"], use_cache=False
        ).logits
        at = 0
        for e in exs:
            alone = model(input_ids=torch.tensor([e.input_ids]), use_cache=False).logits
            torch.testing.assert_close(out[0, at : at + len(e)], alone[0], atol=1e-4, rtol=1e-4)
            at += len(e)


def test_sft_padded_collate_masks_padding(tiny):
    _, tok = tiny
    exs = [Example([5, 6, 7], [IGNORE_INDEX, 6, 7]), Example([5, 6], [IGNORE_INDEX, 6])]
    b = collate_padded(exs, tok.pad_token_id)
    assert b["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert b["labels"].tolist() == [[IGNORE_INDEX, 6, 7], [IGNORE_INDEX, 6, IGNORE_INDEX]]


@pytest.mark.parametrize("packing", [True, False])
def test_sft_plan_step_same_micro_count_on_every_rank(tiny, packing, sft_kit):
    _, tok = tiny
    exs = encode_rows(sft_kit._rows(11), tok, seed=0, epoch=0, max_len=256)
    plans = [
        plan_step(
            exs, rank=r, world=3, micro_batch_size=2, packing=packing, max_len=256, pad_id=tok.pad_token_id
        )
        for r in range(3)
    ]
    assert len({len(p.micro_batches) for p in plans}) == 1
    assert sum(p.examples for p in plans) == len(exs)
    assert sum(p.tokens for p in plans) == sum(len(e) for e in exs)
    targets = sum(int((mb["labels"] != IGNORE_INDEX).sum()) for p in plans for mb in p.micro_batches)
    assert targets == plans[0].num_items == sum(e.n_target for e in exs)


def test_sft_global_batches_cover_epoch_once_and_reshuffle(sft_kit):
    rows = sft_kit._rows(10)
    ep0 = [
        r["sample_id"] for s in range(3) for r in global_batch_rows(rows, s, global_batch_size=4, seed=1)[1]
    ]
    assert sorted(ep0) == sorted(r["sample_id"] for r in rows)
    epoch, b = global_batch_rows(rows, 3, global_batch_size=4, seed=1)
    assert epoch == 1
    ep1 = [
        r["sample_id"]
        for s in range(3, 6)
        for r in global_batch_rows(rows, s, global_batch_size=4, seed=1)[1]
    ]
    assert ep1 != ep0


@pytest.mark.parametrize(
    "text, labels, lang, target",
    [
        (
            "Barack Obama visited Paris.",
            ["person", "location"],
            "en",
            " person: Barack Obama; location: Paris",
        ),
        ("浙商银行企业信贷部叶老桂博士", ["人名", "组织机构"], "zh", " 组织机构: 浙商银行; 人名: 叶老桂"),
        ("Nothing here.", ["person"], "en", " None"),
    ],
)
def test_sft_target_tokenized_as_inference_sees_it_with_sentencepiece(
    tiny_remote_code_llm_dir, text, labels, lang, target
):
    """A legacy SentencePiece tokenizer gives a target alone an extra "▁"; the example must not train it."""
    from transformers import AutoTokenizer

    from b2ner_common.prompts import format_prompt

    tok = AutoTokenizer.from_pretrained(
        tiny_remote_code_llm_dir, trust_remote_code=True, local_files_only=True
    )
    prompt = format_prompt(text, labels, lang)
    alone = tok(target, add_special_tokens=False)["input_ids"]
    ex = encode_example(tok, prompt, target, max_len=1024)
    p = tok(prompt)["input_ids"]
    assert ex.input_ids[: len(p)] == p  # the prompt exactly as the predictor feeds it
    assert ex.input_ids == tok(prompt + target)["input_ids"] + [tok.eos_token_id]
    assert ex.labels[: len(p)] == [IGNORE_INDEX] * len(p) and ex.labels[len(p) :] == ex.input_ids[len(p) :]
    # Tokenized alone, the target carries one extra "▁" in front: what the old encoding trained.
    assert tok.convert_ids_to_tokens(alone[0]) == "▁" and alone[1:] == ex.input_ids[len(p) : -1]
    assert tok.decode(ex.input_ids[len(p) : -1]) == target.strip()


class _MergingTokenizer:
    """Characters, except ": " is one token: "A:" + " b" tokenizes differently joined than apart."""

    eos_token_id = 0

    def __init__(self, fast: bool):
        self.is_fast = fast

    def _pieces(self, text):
        out, i = [], 0
        while i < len(text):
            n = 2 if text[i : i + 2] == ": " else 1
            out.append((text[i : i + n], i, i + n))
            i += n
        return out

    def __call__(self, text, add_special_tokens=True, return_offsets_mapping=False):
        pieces = self._pieces(text)
        enc = {"input_ids": [sum(map(ord, p)) for p, _, _ in pieces]}
        if return_offsets_mapping:
            enc["offset_mapping"] = [(a, b) for _, a, b in pieces]
        return enc


def test_sft_target_across_a_merged_boundary_keeps_the_inference_prompt():
    from b2ner_common.models.llm.sft_data import EncodeStats

    for fast in (True, False):
        tok, stats = _MergingTokenizer(fast), EncodeStats()
        ex = encode_example(tok, "A:", " b", max_len=16, stats=stats)
        assert ex.input_ids[:2] == tok("A:")["input_ids"]  # never the merged ": " token
        assert ex.input_ids[-1] == 0
        assert stats.target_apart == (0 if fast else 1)

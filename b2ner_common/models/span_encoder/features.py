"""Text -> model inputs for the span encoder: words, segments, length-bucketed batches, gold targets.

A "word" is what the tokenizer's pre-tokenizer yields (whitespace/punctuation pieces; every CJK character
is its own word for BERT-style tokenizers). Spans are runs of whole words, so predicted offsets always fall
on word boundaries and `text[start:end]` is the predicted entity text. Each word is represented by its
first sub-word token. Texts longer than the encoder window are cut into segments at word boundaries;
a segment is the unit the model sees (spans never cross segments).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch


@dataclass(slots=True)
class Segment:
    """One encoder window of one text: token ids without specials, word -> first token, word char spans."""

    text_index: int  # position of the source text in the batch given to `segment_texts`
    token_ids: list[int]
    word_first_token: list[int]  # index into token_ids of each word's first sub-word
    word_spans: list[tuple[int, int]]  # char [start, end) of each word in the source text
    # Training only: gold (first word, last word, label) triples and the label names shown for this segment.
    gold: list[tuple[int, int, str]] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    @property
    def n_words(self) -> int:
        return len(self.word_spans)


def segment_texts(tokenizer, texts: Sequence[str], max_tokens: int) -> list[list[Segment]]:
    """Tokenize `texts` (no special tokens) and cut each into word-aligned segments of <= max_tokens tokens.

    Returns one list of segments per text (empty for a text with no tokens). A single word longer than
    `max_tokens` is truncated to its first `max_tokens` sub-words (its span stays the whole word).
    """
    if not texts:
        return []
    # No truncation here (segments are cut below), so silence the "longer than the maximum" warning.
    enc = tokenizer(
        list(texts), add_special_tokens=False, return_offsets_mapping=True, truncation=False, verbose=False
    )
    out: list[list[Segment]] = []
    for ti in range(len(texts)):
        ids = enc["input_ids"][ti]
        offsets = enc["offset_mapping"][ti]
        word_ids = enc.word_ids(ti)
        # Group tokens by word: (first token, last token, char start, char end).
        words: list[list[int]] = []
        prev = None
        for tok_i, w in enumerate(word_ids):
            if w is None:
                continue
            s, e = offsets[tok_i]
            if w != prev:
                words.append([tok_i, tok_i, s, e])
                prev = w
            else:
                words[-1][1] = tok_i
                words[-1][3] = max(words[-1][3], e)
        segs: list[Segment] = []
        cur = Segment(ti, [], [], [])
        for first, last, s, e in words:
            n = min(last - first + 1, max_tokens)
            if cur.token_ids and len(cur.token_ids) + n > max_tokens:
                segs.append(cur)
                cur = Segment(ti, [], [], [])
            cur.word_first_token.append(len(cur.token_ids))
            cur.word_spans.append((s, e))
            cur.token_ids.extend(ids[first : first + n])
        if cur.token_ids:
            segs.append(cur)
        out.append(segs)
    return out


def align_entities(
    seg: Segment, entities: Sequence[tuple[int, int, str]], max_width: int
) -> tuple[list[tuple[int, int, str]], int]:
    """Map character-offset entities onto (first word, last word, label) of a segment.

    Returns (aligned, skipped): an entity is skipped when its boundaries do not fall on word boundaries
    of this segment or it is wider than `max_width` words (callers count these; nothing is silent).
    """
    starts = {s: i for i, (s, _) in enumerate(seg.word_spans)}
    ends = {e: i for i, (_, e) in enumerate(seg.word_spans)}
    aligned, skipped = [], 0
    for s, e, label in entities:
        i, j = starts.get(s), ends.get(e)
        if i is None or j is None or j < i or j - i + 1 > max_width:
            skipped += 1
            continue
        aligned.append((i, j, label))
    return aligned, skipped


@dataclass(slots=True)
class Batch:
    input_ids: torch.Tensor  # [B, T] with [CLS] ... [SEP] and padding
    attention_mask: torch.Tensor  # [B, T]
    word_index: torch.Tensor  # [B, W] token position of each word's first sub-word (0 for padding)
    word_mask: torch.Tensor  # [B, W] bool
    segments: list[Segment]
    labels: list[str]  # union of the label names of the batch (column order of the logits)
    label_mask: torch.Tensor  # [B, L] bool: label l is shown for segment b
    targets: torch.Tensor | None = None  # [B, W, K, L] float, training only
    # Uni-encoder only: token position of each column's label marker per segment (0 = not shown), and
    # which input positions are markers (their embedding is the model's trainable marker vector).
    label_index: torch.Tensor | None = None  # [B, L] long
    marker_mask: torch.Tensor | None = None  # [B, T] bool
    label_pool: torch.Tensor | None = None  # [B, L, T] float: mean over a label's marker + name tokens


def collate(
    segments: Sequence[Segment],
    labels_per_segment: Sequence[Sequence[str]],
    *,
    cls_id: int,
    sep_id: int,
    pad_id: int,
    max_width: int,
    with_targets: bool = False,
) -> Batch:
    """Pad a list of segments into tensors; `labels_per_segment[b]` are the label names scored for b."""
    b = len(segments)
    t = max(len(s.token_ids) for s in segments) + 2
    w = max(max(s.n_words for s in segments), 1)
    input_ids = torch.full((b, t), pad_id, dtype=torch.long)
    attn = torch.zeros((b, t), dtype=torch.long)
    word_index = torch.zeros((b, w), dtype=torch.long)
    word_mask = torch.zeros((b, w), dtype=torch.bool)
    label_pos: dict[str, int] = {}
    for ls in labels_per_segment:
        for name in ls:
            label_pos.setdefault(name, len(label_pos))
    label_mask = torch.zeros((b, max(len(label_pos), 1)), dtype=torch.bool)
    for i, seg in enumerate(segments):
        n = len(seg.token_ids)
        input_ids[i, 0] = cls_id
        input_ids[i, 1 : n + 1] = torch.tensor(seg.token_ids, dtype=torch.long)
        input_ids[i, n + 1] = sep_id
        attn[i, : n + 2] = 1
        if seg.n_words:
            word_index[i, : seg.n_words] = torch.tensor(seg.word_first_token, dtype=torch.long) + 1
            word_mask[i, : seg.n_words] = True
        for name in labels_per_segment[i]:
            label_mask[i, label_pos[name]] = True
    targets = None
    if with_targets:
        targets = torch.zeros((b, w, max_width, label_mask.shape[1]), dtype=torch.float32)
        for i, seg in enumerate(segments):
            for first, last, label in seg.gold:
                if label in label_pos:
                    targets[i, first, last - first, label_pos[label]] = 1.0
    return Batch(input_ids, attn, word_index, word_mask, list(segments), list(label_pos), label_mask, targets)


def collate_prompted(
    segments: Sequence[Segment],
    labels_per_segment: Sequence[Sequence[str]],
    label_tokens: Callable[[str], list[int]],
    *,
    cls_id: int,
    sep_id: int,
    pad_id: int,
    marker_id: int,
    max_width: int,
    with_targets: bool = False,
) -> Batch:
    """Uni-encoder inputs: `[CLS] <m> label1 <m> label2 ... [SEP] text [SEP]` per segment.

    Each segment's labels are written in its own order (training shuffles them; the model must not learn
    positions). `<m>` is `marker_id` in input_ids and flagged in marker_mask (the model swaps in its
    trained marker embedding there); `label_tokens(name)` gives the (truncated) sub-word ids of a name.
    Label columns are the union over the batch, as in `collate`, so targets and decoding are shared.
    """
    b = len(segments)
    label_pos: dict[str, int] = {}
    for ls in labels_per_segment:
        for name in ls:
            label_pos.setdefault(name, len(label_pos))
    n_cols = max(len(label_pos), 1)
    prompts: list[list[int]] = []
    marks: list[list[tuple[int, int, int]]] = []  # (marker position, column, name length) per segment
    for ls in labels_per_segment:
        ids, mk = [cls_id], []
        for name in ls:
            name_ids = label_tokens(name)
            mk.append((len(ids), label_pos[name], len(name_ids)))
            ids.append(marker_id)
            ids.extend(name_ids)
        ids.append(sep_id)
        prompts.append(ids)
        marks.append(mk)
    t = max(len(p) + len(s.token_ids) for p, s in zip(prompts, segments, strict=True)) + 1
    w = max(max(s.n_words for s in segments), 1)
    input_ids = torch.full((b, t), pad_id, dtype=torch.long)
    attn = torch.zeros((b, t), dtype=torch.long)
    marker_mask = torch.zeros((b, t), dtype=torch.bool)
    word_index = torch.zeros((b, w), dtype=torch.long)
    word_mask = torch.zeros((b, w), dtype=torch.bool)
    label_mask = torch.zeros((b, n_cols), dtype=torch.bool)
    label_index = torch.zeros((b, n_cols), dtype=torch.long)
    label_pool = torch.zeros((b, n_cols, t), dtype=torch.float32)
    for i, (seg, prompt) in enumerate(zip(segments, prompts, strict=True)):
        row = prompt + seg.token_ids + [sep_id]
        input_ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        attn[i, : len(row)] = 1
        if seg.n_words:
            word_index[i, : seg.n_words] = torch.tensor(seg.word_first_token, dtype=torch.long) + len(prompt)
            word_mask[i, : seg.n_words] = True
        for pos, col, n in marks[i]:
            marker_mask[i, pos] = True
            label_index[i, col] = pos
            label_mask[i, col] = True
            label_pool[i, col, pos : pos + n + 1] = 1.0 / (n + 1)
    targets = None
    if with_targets:
        targets = torch.zeros((b, w, max_width, n_cols), dtype=torch.float32)
        for i, seg in enumerate(segments):
            for first, last, label in seg.gold:
                if label in label_pos and label in labels_per_segment[i]:
                    targets[i, first, last - first, label_pos[label]] = 1.0
    return Batch(
        input_ids,
        attn,
        word_index,
        word_mask,
        list(segments),
        list(label_pos),
        label_mask,
        targets,
        label_index,
        marker_mask,
        label_pool,
    )


def length_batches(
    lengths: Sequence[int],
    batch_size: int,
    *,
    shuffle: bool,
    rng: random.Random | None = None,
    pool: int = 50,
) -> Iterator[list[int]]:
    """Indices grouped into batches of similar length (less padding, which dominates CPU time).

    shuffle=False: one global sort (inference). shuffle=True: shuffle, sort inside pools of
    `pool` batches, then shuffle the batch order (training keeps randomness, loses most padding).
    """
    order = list(range(len(lengths)))
    if not shuffle:
        order.sort(key=lambda i: lengths[i])
        for k in range(0, len(order), batch_size):
            yield order[k : k + batch_size]
        return
    rng = rng or random.Random(0)
    rng.shuffle(order)
    batches: list[list[int]] = []
    chunk = batch_size * pool
    for k in range(0, len(order), chunk):
        part = sorted(order[k : k + chunk], key=lambda i: lengths[i])
        batches.extend(part[j : j + batch_size] for j in range(0, len(part), batch_size))
    rng.shuffle(batches)
    yield from batches

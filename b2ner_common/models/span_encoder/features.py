"""Text -> model inputs for the span encoder: words, segments, length-bucketed batches, gold targets.

A "word" is cut by `word_spans`, not by the tokenizer: BERT's rule (whitespace and punctuation separate
words, every CJK character is its own word) for every backbone, so a SentencePiece model such as
multilingual-e5 (whose pre-tokenizer splits on whitespace only) gets the same words as MiniLM: `Paris.` is
two words and a Chinese sentence is one word per character. The words are then tokenized apart
(`is_split_into_words`). Spans are runs of whole words, so predicted offsets always fall on word
boundaries and `text[start:end]` is the predicted entity text. Each word is represented by its first
sub-word token. Texts longer than the encoder window are cut into segments at word boundaries;
a segment is the unit the model sees (spans never cross segments).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import regex
import torch

# BERT's word rule (transformers' BasicTokenizer / tokenizers' BertPreTokenizer): ASCII symbols and Unicode
# punctuation are one-character words, and so is every CJK ideograph (the CJK Unified blocks BERT lists).
_ASCII_PUNCT = regex.escape(
    "".join(chr(c) for c in [*range(33, 48), *range(58, 65), *range(91, 97), *range(123, 127)])
)
_CJK = (
    "\u4e00-\u9fff\u3400-\u4dbf\U00020000-\U0002a6df\U0002a700-\U0002b73f\U0002b740-\U0002b81f"
    "\U0002b820-\U0002ceaf\uf900-\ufaff\U0002f800-\U0002fa1f"
)
_WORD = regex.compile(rf"[{_ASCII_PUNCT}\p{{P}}{_CJK}]|[^\s{_ASCII_PUNCT}\p{{P}}{_CJK}]+")


def word_spans(text: str) -> list[tuple[int, int]]:
    """Char [start, end) of each word of `text` under BERT's rule, whatever the tokenizer."""
    return [m.span() for m in _WORD.finditer(text)]


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


def _bare_space_id(tokenizer) -> int | None:
    """The id of SentencePiece's lone "▁" piece, or None where the vocabulary has none (WordPiece)."""
    tid = tokenizer.convert_tokens_to_ids("\u2581")
    return None if tid is None or tid == tokenizer.unk_token_id else tid


def _starts_word(word_of: list[int]) -> bool:
    """Whether the last token kept is the first of its word."""
    return len(word_of) == 1 or word_of[-2] != word_of[-1]


def segment_texts(tokenizer, texts: Sequence[str], max_tokens: int) -> list[list[Segment]]:
    """Tokenize `texts` (no special tokens) and cut each into word-aligned segments of <= max_tokens tokens.

    Returns one list of segments per text (empty for a text with no tokens). A single word longer than
    `max_tokens` is truncated to its first `max_tokens` sub-words (its span stays the whole word).
    """
    if not texts:
        return []
    spans_per_text = [word_spans(t) for t in texts]
    with_words = [i for i, sp in enumerate(spans_per_text) if sp]
    token_ids: dict[int, list[int]] = {}
    words_per_text: dict[int, list[list[int]]] = {}
    if with_words:
        # No truncation here (segments are cut below), so silence the "longer than the maximum" warning.
        enc = tokenizer(
            [[texts[i][s:e] for s, e in spans_per_text[i]] for i in with_words],
            is_split_into_words=True,
            add_special_tokens=False,
            truncation=False,
            verbose=False,
        )
        bare_space = _bare_space_id(tokenizer)
        for row, ti in enumerate(with_words):
            ids, word_of = [], []
            for tok, w in zip(enc["input_ids"][row], enc.word_ids(row), strict=True):
                if w is None:
                    continue
                # SentencePiece writes a word that has no "▁x" piece as "▁" + "x" (every CJK character in
                # XLM-R); the bare "▁" would then stand for the word, so it is dropped when more follows.
                if word_of and word_of[-1] == w and ids[-1] == bare_space and _starts_word(word_of):
                    ids.pop()
                    word_of.pop()
                ids.append(tok)
                word_of.append(w)
            token_ids[ti] = ids
            # word index -> [first token, last token]; a word the tokenizer drops (control characters only)
            # gets no tokens and is no word of the segment.
            groups: dict[int, list[int]] = {}
            for tok_i, w in enumerate(word_of):
                groups.setdefault(w, [tok_i, tok_i])[1] = tok_i
            words_per_text[ti] = [
                [first, last, *spans_per_text[ti][w]] for w, (first, last) in groups.items()
            ]
    out: list[list[Segment]] = []
    for ti in range(len(texts)):
        ids = token_ids.get(ti, [])
        words = words_per_text.get(ti, [])
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

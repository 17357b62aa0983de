"""SFT data for the LLM family: instructions -> token ids with label masking -> packed micro-batches.

Everything here is plain Python/torch over rows, unit-tested without Ray (the Ray job in
`ray_train/train_llm.py` only calls these). The step plan is computed identically on every worker
from the full (small) selected set, so each worker knows every micro-batch of every step: no data
collective is needed, every worker runs the same number of micro-steps (DDP/ZeRO collectives stay
in lock-step), and a resumed run replays exactly the same batches from the checkpointed step.

Token layout of one example (what the model sees at inference, then what it should generate):
    tokenizer(prompt + target) [with the tokenizer's own special tokens, e.g. BOS] + [EOS]
Labels are -100 on the first len(tokenizer(prompt)) tokens, so the loss covers the answer and EOS only.
Prompt and target are tokenized together because tokenizing the target on its own is not what the model
sees: a legacy SentencePiece tokenizer (Llama-2 style, no whitespace normalization) turns " person: X"
alone into ["▁", "▁person", ...] but after "Answer:" into ["▁person", ...], so a separately tokenized target
trains one extra "▁" before every answer. The prompt's own tokens are checked to be a prefix of the joint
tokens (the predictor feeds exactly those); where a tokenizer merges across the boundary, the fast
tokenizer's offsets split it, else the target is tokenized alone and the example counted (`EncodeStats`).

Packing: several examples share one row of `max_len` tokens; `position_ids` restart at 0 for every
example and no attention_mask is passed. transformers (>= 4.5x, both sdpa/eager and flash-attention
varlen) detects the restarts and builds a block-diagonal causal mask, so examples in a row do not
attend to each other (tests/models/test_sft_data.py checks packed logits equal unpacked logits).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from b2ner_common.prompts import LabelNamer, build_instruction, instruction_rng

IGNORE_INDEX = -100


@dataclass(slots=True)
class Example:
    """One tokenized training example."""

    input_ids: list[int]
    labels: list[int]  # IGNORE_INDEX on prompt tokens
    truncated: bool = False

    @property
    def n_target(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE_INDEX)

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass(slots=True)
class EncodeStats:
    examples: int = 0
    truncated: int = 0  # cut at the end to max_len (target partly lost)
    skipped: list[str] = field(default_factory=list)  # sample ids whose prompt alone fills max_len
    target_apart: int = 0  # targets tokenized on their own (prompt tokens not a prefix, no offsets)


def target_tokens(
    tokenizer: Any, prompt: str, target: str, prompt_ids: Sequence[int]
) -> tuple[list[int], bool]:
    """The target's token ids as they follow `prompt_ids` when prompt + target is tokenized as one text.

    Returns (ids, joint): joint is False when the joint tokenization does not start with `prompt_ids` and
    no offsets can split it, so the target had to be tokenized on its own.
    """
    full = list(tokenizer(prompt + target)["input_ids"])
    n = len(prompt_ids)
    if full[:n] == list(prompt_ids):
        return full[n:], True
    if getattr(tokenizer, "is_fast", False):
        # A token merged across the boundary: keep the prompt as inference sees it and take the joint
        # tokens that start inside the target.
        enc = tokenizer(prompt + target, return_offsets_mapping=True)
        return [
            i
            for i, (a, b) in zip(enc["input_ids"], enc["offset_mapping"], strict=True)
            if a >= len(prompt) and b > a
        ], True
    return list(tokenizer(target, add_special_tokens=False)["input_ids"]), False


def encode_example(
    tokenizer: Any, prompt: str, target: str, max_len: int, stats: EncodeStats | None = None
) -> Example | None:
    """Token ids + masked labels for prompt + target + EOS; None when the prompt leaves no target room.

    The target is tokenized in context (`target_tokens`); longer examples are cut at the end (B2NER does
    the same); `truncated` says so.
    """
    p = list(tokenizer(prompt)["input_ids"])
    t, joint = target_tokens(tokenizer, prompt, target, p)
    if not joint and stats is not None:
        stats.target_apart += 1
    if tokenizer.eos_token_id is not None and (not t or t[-1] != tokenizer.eos_token_id):
        t.append(tokenizer.eos_token_id)
    if len(p) >= max_len:
        return None
    ids = (p + t)[:max_len]
    labels = ([IGNORE_INDEX] * len(p) + t)[:max_len]
    return Example(ids, labels, truncated=len(p) + len(t) > max_len)


def encode_rows(
    rows: Sequence[Mapping[str, Any]],
    tokenizer: Any,
    *,
    seed: int,
    epoch: int,
    max_len: int,
    max_labels: int = 18,
    drop_p: float = 0.1,
    label_name: LabelNamer | None = None,
    definitions: Mapping[str, str] | None = None,
    definitions_by_lang: Mapping[str, Mapping[str, str]] | None = None,
    stats: EncodeStats | None = None,
) -> list[Example]:
    """Silver rows (with `sample_id`, `lang`, `text`, `entities`, `label_set`) -> examples.

    The instruction of a row depends only on (seed, epoch, sample_id): pass a fixed epoch to keep one
    instruction per sample for the whole run. `definitions_by_lang` ({lang: {English type: definition}})
    picks the definitions in each row's language (else `definitions`). Rows whose prompt fills max_len are skipped and listed
    in `stats.skipped` (never silently).
    """
    out: list[Example] = []
    for row in rows:
        rng = instruction_rng(seed, epoch, row["sample_id"])
        prompt, target = build_instruction(
            row,
            list(row.get("label_set") or []),
            rng,
            max_labels=max_labels,
            drop_p=drop_p,
            definitions=(definitions_by_lang or {}).get(row.get("lang") or "en") or definitions,
            label_name=label_name,
        )
        ex = encode_example(tokenizer, prompt, target, max_len, stats)
        if stats is not None:
            stats.examples += 1
        if ex is None:
            if stats is not None:
                stats.skipped.append(row["sample_id"])
            continue
        if stats is not None and ex.truncated:
            stats.truncated += 1
        out.append(ex)
    return out


def pack(lengths: Sequence[int], max_len: int) -> list[list[int]]:
    """First-fit-decreasing bins of example indices whose lengths sum to <= max_len (deterministic)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins: list[list[int]] = []
    room: list[int] = []
    for i in order:
        n = lengths[i]
        for b, r in enumerate(room):
            if n <= r:
                bins[b].append(i)
                room[b] -= n
                break
        else:
            bins.append([i])
            room.append(max_len - n)
    return bins


def _example_weights(e: Example) -> list[float]:
    """Per-token loss weight for example averaging: 1 / (the example's target tokens) on every token
    (only target tokens count; the label mask removes the rest)."""
    return [1.0 / max(e.n_target, 1)] * len(e)


def collate_padded(examples: Sequence[Example], pad_id: int, weights: bool = False) -> dict[str, Any]:
    """One example per row, right-padded: input_ids, labels, attention_mask (LongTensors); with
    `weights`, `loss_weights` for example-averaged loss (`_example_weights`)."""
    import torch

    width = max(len(e) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for r, e in enumerate(examples):
        ids[r, : len(e)] = torch.tensor(e.input_ids)
        labels[r, : len(e)] = torch.tensor(e.labels)
        mask[r, : len(e)] = 1
    out = {"input_ids": ids, "labels": labels, "attention_mask": mask}
    if weights:
        w = torch.zeros((len(examples), width), dtype=torch.float32)
        for r, e in enumerate(examples):
            w[r, : len(e)] = torch.tensor(_example_weights(e))
        out["loss_weights"] = w
    return out


def collate_packed(rows: Sequence[Sequence[Example]], pad_id: int, weights: bool = False) -> dict[str, Any]:
    """Several examples per row: input_ids, labels, position_ids restarting per example; no mask; with
    `weights`, `loss_weights` for example-averaged loss.

    Row padding is a trailing pseudo-example (positions restart at 0, labels ignored), so padding
    never attends into real tokens either.
    """
    import torch

    width = max(sum(len(e) for e in row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    pos = torch.zeros((len(rows), width), dtype=torch.long)
    for r, row in enumerate(rows):
        at = 0
        for e in row:
            n = len(e)
            ids[r, at : at + n] = torch.tensor(e.input_ids)
            labels[r, at : at + n] = torch.tensor(e.labels)
            pos[r, at : at + n] = torch.arange(n)
            at += n
        pos[r, at:] = torch.arange(width - at)
    out = {"input_ids": ids, "labels": labels, "position_ids": pos}
    if weights:
        w = torch.zeros((len(rows), width), dtype=torch.float32)
        for r, row in enumerate(rows):
            w[r, : sum(len(e) for e in row)] = torch.tensor([x for e in row for x in _example_weights(e)])
        out["loss_weights"] = w
    return out


def dummy_batch(pad_id: int, weights: bool = False) -> dict[str, Any]:
    """A one-token batch with no target: keeps a worker in step when it has no rows left this step."""
    import torch

    out = {
        "input_ids": torch.full((1, 2), pad_id, dtype=torch.long),
        "labels": torch.full((1, 2), IGNORE_INDEX, dtype=torch.long),
        "attention_mask": torch.ones((1, 2), dtype=torch.long),
    }
    if weights:
        out["loss_weights"] = torch.zeros((1, 2), dtype=torch.float32)
    return out


@dataclass(slots=True)
class StepPlan:
    """What one worker runs in one optimizer step."""

    micro_batches: list[dict[str, Any]]
    # The loss normalizer over the whole global batch (all workers): target tokens (token average) or
    # examples with a target (example average).
    num_items: int
    tokens: int  # real (non-pad) tokens of this worker's micro-batches
    examples: int  # examples of this worker


def plan_step(
    examples: Sequence[Example],
    *,
    rank: int,
    world: int,
    micro_batch_size: int,
    packing: bool,
    max_len: int,
    pad_id: int,
    loss_average: str = "token",
) -> StepPlan:
    """Split one global batch into this worker's micro-batches (same count on every worker).

    Rows (packed bins, or single examples) are dealt round-robin to workers; a worker with fewer
    rows than the others gets empty `dummy_batch`es so collectives stay matched.
    loss_average: "token" (every target token weighs the same) or "example" (every example does; the
    micro-batches carry `loss_weights`).
    """
    w = loss_average == "example"
    rows = pack([len(e) for e in examples], max_len) if packing else [[i] for i in range(len(examples))]
    n_micro = max(1, math.ceil(len(rows) / (world * micro_batch_size)))
    mine = rows[rank::world]
    micro: list[dict[str, Any]] = []
    for m in range(n_micro):
        chunk = mine[m * micro_batch_size : (m + 1) * micro_batch_size]
        if not chunk:
            micro.append(dummy_batch(pad_id, w))
        elif packing:
            micro.append(collate_packed([[examples[i] for i in row] for row in chunk], pad_id, w))
        else:
            micro.append(collate_padded([examples[row[0]] for row in chunk], pad_id, w))
    return StepPlan(
        micro_batches=micro,
        num_items=sum(1 for e in examples if e.n_target) if w else sum(e.n_target for e in examples),
        tokens=sum(len(examples[i]) for row in mine for i in row),
        examples=sum(len(row) for row in mine),
    )


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The sample order of one epoch: a permutation fixed by (seed, epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def steps_per_epoch(n: int, global_batch_size: int) -> int:
    return max(1, math.ceil(n / global_batch_size))


def global_batch_rows(
    rows: Sequence[Mapping[str, Any]], step: int, *, global_batch_size: int, seed: int
) -> tuple[int, list[Mapping[str, Any]]]:
    """(epoch, rows of global step `step`); rows must be in a fixed order (e.g. sorted by sample_id)."""
    spe = steps_per_epoch(len(rows), global_batch_size)
    epoch, b = divmod(step, spe)
    order = epoch_order(len(rows), seed, epoch)
    idx = order[b * global_batch_size : (b + 1) * global_batch_size]
    return epoch, [rows[i] for i in idx]


def iter_steps(
    rows: Sequence[Mapping[str, Any]],
    tokenizer: Any,
    *,
    start_step: int,
    total_steps: int,
    global_batch_size: int,
    seed: int,
    rank: int,
    world: int,
    micro_batch_size: int,
    packing: bool,
    max_len: int,
    resample_per_epoch: bool = True,
    loss_average: str = "token",
    max_labels: int = 18,
    drop_p: float = 0.1,
    label_name: LabelNamer | None = None,
    definitions: Mapping[str, str] | None = None,
    definitions_by_lang: Mapping[str, Mapping[str, str]] | None = None,
    stats: EncodeStats | None = None,
) -> Iterable[tuple[int, int, StepPlan]]:
    """Yield (step, epoch, plan) for steps start_step..total_steps-1 of this worker."""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    for step in range(start_step, total_steps):
        epoch, batch = global_batch_rows(rows, step, global_batch_size=global_batch_size, seed=seed)
        examples = encode_rows(
            batch,
            tokenizer,
            seed=seed,
            epoch=epoch if resample_per_epoch else 0,
            max_len=max_len,
            max_labels=max_labels,
            drop_p=drop_p,
            label_name=label_name,
            definitions=definitions,
            definitions_by_lang=definitions_by_lang,
            stats=stats,
        )
        if not examples:
            continue
        yield (
            step,
            epoch,
            plan_step(
                examples,
                rank=rank,
                world=world,
                micro_batch_size=micro_batch_size,
                packing=packing,
                max_len=max_len,
                pad_id=pad_id,
                loss_average=loss_average,
            ),
        )


def rows_from_arrow(
    table: Any, columns: Iterable[str] = ("sample_id", "lang", "text", "entities", "label_set")
):
    """Arrow table of selected silver rows -> list of dicts in sample_id order (the fixed base order)."""
    import pyarrow.compute as pc

    cols = [c for c in columns if c in table.column_names]
    t = table.select(cols)
    t = t.take(pc.sort_indices(t, [("sample_id", "ascending")]))
    return t.to_pylist()

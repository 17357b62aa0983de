"""Training core of the span-encoder family: silver-style rows -> training segments -> a plain torch loop.

No engine here: `ray_train.train_span_encoder` runs `SpanTrainer` inside Ray Train workers, the ablation and
the tests run it directly. Rows are dicts with `text`, `dataset`, `entities` (start, end, label, type) and
optionally `label_set` (the dataset's universal label set, as in silver/samples).

Label handling per training step, after B2NER: the labels shown for a segment are its positive labels (each
dropped with p=`drop_positive` together with its entities), negatives from its dataset's label set (true
negatives: annotated in that dataset but absent here), then up to `pool_negatives` random labels from the
whole pool, at most `max_labels` in all.
"""

from __future__ import annotations

import math
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import torch

from b2ner_common.config import PipelineConfig, SpanTrainerKnobs
from b2ner_common.models.span_encoder.features import Segment, align_entities, length_batches, segment_texts
from b2ner_common.models.span_encoder.model import SpanEncoder, span_loss


class SpanTrainOptions(SpanTrainerKnobs):
    """Everything `SpanTrainer` reads: the per-step knobs of `train.span` (SpanTrainerKnobs, declared once in
    config.py) plus the run-level ones; `from_config` builds it from a PipelineConfig."""

    steps: int = 1000  # total steps, unless max_seconds is set
    # Training-time budget (seconds of training steps, evaluation pauses not counted): the step count is
    # planned from the measured step time and re-planned every `replan_every` steps, and the LR schedule
    # (warm-up, then linear decay to 0) follows the planned count, so the run ends with a decayed LR.
    # from_config sets it from train.span.max_minutes unless train.max_steps is given.
    max_seconds: float | None = None
    replan_every: int = 20
    weight_decay: float = 0.01
    warmup_fraction: float = 0.05
    grad_clip: float = 1.0
    seed: int = 0

    @classmethod
    def from_config(cls, cfg: PipelineConfig, steps: int) -> SpanTrainOptions:
        """`train.span`'s trainer knobs + `steps`, `train.weight_decay` and `train.seed`."""
        knobs = cfg.train.span.model_dump(include=set(SpanTrainerKnobs.model_fields))
        budget = knobs["max_minutes"] if not cfg.train.max_steps else None
        return cls(
            **knobs,
            steps=steps,
            max_seconds=budget * 60 if budget else None,
            weight_decay=cfg.train.weight_decay,
            seed=cfg.train.seed,
        )


@dataclass
class ExampleStats:
    samples: int = 0
    segments: int = 0
    entities: int = 0
    aligned: int = 0
    skipped_unaligned_or_wide: int = 0
    skipped_unlabelled: int = 0  # entity with an empty label in `label_field` (e.g. unmapped type)
    per_dataset: dict[str, int] = field(default_factory=dict)


def examples_from_rows(
    rows: Iterable[dict],
    model: SpanEncoder,
    label_field: str = "type",
    label_name: Callable[[str, str], str] | None = None,
) -> tuple[list[Segment], ExampleStats]:
    """Segments with gold (first word, last word, label) and the dataset label set, ready for `SpanTrainer`.

    With label_field="type", the dataset label set is the row's `label_set` when present; otherwise (and
    always for raw labels) it is the set of labels seen in that dataset's rows. `label_name(type, lang)`
    turns taxonomy type ids into the names shown to the model (e.g. the taxonomy's `name`), as at
    evaluation time; raw labels are shown as they are.
    """
    if label_field not in ("type", "label"):
        raise ValueError(f"label_field must be 'type' or 'label', got {label_field!r}")
    if label_field == "type" and label_name is not None:
        rows = [_renamed(r, label_name) for r in rows]
    rows = list(rows)
    stats = ExampleStats(samples=len(rows))
    seen: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        for e in r.get("entities") or []:
            if e.get(label_field):
                seen[r.get("dataset", "")].add(e[label_field])
    segs_per_row = segment_texts(model.tokenizer, [r["text"] for r in rows], model.settings.max_tokens)
    out: list[Segment] = []
    per_ds: dict[str, int] = defaultdict(int)
    for r, segs in zip(rows, segs_per_row, strict=True):
        ds = r.get("dataset", "")
        if label_field == "type" and r.get("label_set") is not None and len(r["label_set"]) > 0:
            label_set = sorted(set(r["label_set"]))
        else:
            label_set = sorted(seen[ds])
        ents = []
        for e in r.get("entities") or []:
            stats.entities += 1
            if not e.get(label_field):
                stats.skipped_unlabelled += 1
                continue
            ents.append((int(e["start"]), int(e["end"]), e[label_field]))
        placed = 0
        for seg in segs:
            seg.gold, _ = align_entities(seg, ents, model.settings.max_width)
            seg.labels = label_set
            placed += len(seg.gold)
            out.append(seg)
        stats.aligned += placed
        stats.skipped_unaligned_or_wide += len(ents) - placed
        per_ds[ds] += 1
    stats.segments = len(out)
    stats.per_dataset = dict(per_ds)
    return out, stats


def _renamed(row: dict, label_name: Callable[[str, str], str]) -> dict:
    lang = row.get("lang") or "en"
    ents = [
        {**e, "type": label_name(e["type"], lang) if e.get("type") else e.get("type")}
        for e in row["entities"] or []
    ]
    label_set = row.get("label_set")
    if label_set is not None:
        label_set = [label_name(t, lang) for t in label_set]
    return {**row, "entities": ents, "label_set": label_set}


def sample_labels(
    seg: Segment, pool: list[str], opts: SpanTrainOptions, rng: random.Random
) -> tuple[list[str], list[tuple[int, int, str]]]:
    """Labels shown for one segment at one step, and its gold restricted to them (see module doc)."""
    positives = sorted({g[2] for g in seg.gold})
    kept = [p for p in positives if rng.random() >= opts.drop_positive]
    shown = kept[: opts.max_labels]
    negatives = [x for x in seg.labels if x not in positives]
    rng.shuffle(negatives)
    shown += negatives[: max(opts.max_labels - len(shown), 0)]
    budget = min(opts.pool_negatives, opts.max_labels - len(shown))
    if budget > 0 and pool:
        exclude = set(shown) | set(positives)
        extra = [x for x in rng.sample(pool, min(len(pool), budget + len(exclude))) if x not in exclude]
        shown += extra[:budget]
    rng.shuffle(shown)
    keep = set(shown)
    return shown, [g for g in seg.gold if g[2] in keep]


class SpanTrainer:
    """A resumable training loop: AdamW (two learning rates), linear warmup/decay, length-bucketed batches.

    `forward_model` is what the forward pass calls (e.g. a DDP wrapper of `model`); defaults to `model`.
    """

    def __init__(
        self,
        model: SpanEncoder,
        examples: list[Segment],
        opts: SpanTrainOptions,
        forward_model: torch.nn.Module | None = None,
    ):
        if not examples:
            raise ValueError("no training examples (is the training table empty?)")
        self.model = model
        self.forward_model = forward_model or model
        self.examples = examples
        self.opts = opts
        self.pool = sorted({x for s in examples for x in s.labels} | {g[2] for s in examples for g in s.gold})
        self.step = 0
        self.samples_seen = 0
        self.train_seconds = 0.0  # time spent in train_step (the budget counts only this)
        self.total_steps = opts.steps  # planned; re-planned from the step time under max_seconds
        self._calib: tuple[int, float] | None = None  # (step, train_seconds) where timing starts
        skip = {id(p) for p in model.label_encoder.parameters()} if model.label_encoder is not None else set()
        encoder_params = [p for p in model.encoder.parameters() if p.requires_grad]
        enc_ids = {id(p) for p in encoder_params} | skip | {id(p) for p in model.encoder.parameters()}
        head_params = [p for p in model.parameters() if p.requires_grad and id(p) not in enc_ids]
        self.optimizer = torch.optim.AdamW(
            [{"params": encoder_params, "lr": opts.lr_encoder}, {"params": head_params, "lr": opts.lr_head}],
            weight_decay=opts.weight_decay,
        )

        def schedule(step: int) -> float:
            total = max(self.total_steps, 1)
            warmup = max(int(total * opts.warmup_fraction), 1)
            if step < warmup:
                return (step + 1) / warmup
            return max(0.0, (total - step) / max(total - warmup, 1))

        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        # Bi-encoder: pooled label encodings are computed once for the whole pool (frozen label tower).
        model._encode_label_texts([model.label_text(x) for x in self.pool])

    @property
    def done(self) -> bool:
        return self.step >= self.total_steps

    def replan(self, agree: Callable[[int], int] | None = None) -> int:
        """Re-plan total_steps so training ends at max_seconds (no-op without a budget).

        The step time is measured from step 3 on (the first steps pay allocator and warm-up costs).
        `agree(total) -> total` lets data-parallel ranks settle on one number (e.g. the minimum).
        """
        if self.opts.max_seconds is None:
            return self.total_steps
        if self._calib is None or self.step <= self._calib[0]:
            return self.total_steps
        per_step = (self.train_seconds - self._calib[1]) / (self.step - self._calib[0])
        remaining = max(self.opts.max_seconds - self.train_seconds, 0.0)
        total = self.step + int(remaining / max(per_step, 1e-6))
        self.total_steps = agree(total) if agree else total
        return self.total_steps

    def _batches(self) -> Iterator[list[int]]:
        """Endless, deterministic stream of batches; resuming at step n skips the first n batches."""
        lengths = [len(s.token_ids) for s in self.examples]
        epoch, produced = 0, 0
        while True:
            rng = random.Random(self.opts.seed * 100003 + epoch)
            for idx in length_batches(lengths, self.opts.batch_size, shuffle=True, rng=rng):
                if produced >= self.step:
                    yield idx
                produced += 1
            epoch += 1

    def train_step(self, idx: list[int]) -> float:
        rng = random.Random(self.opts.seed * 7919 + self.step)
        segs, shown = [], []
        for i in idx:
            seg = self.examples[i]
            labels, gold = sample_labels(seg, self.pool, self.opts, rng)
            segs.append(
                Segment(seg.text_index, seg.token_ids, seg.word_first_token, seg.word_spans, gold, seg.labels)
            )
            shown.append(labels)
        batch = self.model.collate(segs, shown, with_targets=True)
        self.forward_model.train()
        logits = self.forward_model(batch, batch.labels)
        loss = span_loss(
            logits, batch, self.model.span_mask(batch), self.opts.focal_gamma, self.opts.positive_weight
        )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.opts.grad_clip:
            torch.nn.utils.clip_grad_norm_(
                [p for p in self.model.parameters() if p.requires_grad], self.opts.grad_clip
            )
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        self.samples_seen += len(idx)
        return float(loss.detach())

    def _timed_step(self, idx: list[int], agree: Callable[[int], int] | None) -> float:
        t0 = time.perf_counter()
        loss = self.train_step(idx)
        self.train_seconds += time.perf_counter() - t0
        if self.opts.max_seconds is not None:
            if self._calib is None and self.step >= 3:
                self._calib = (self.step, self.train_seconds)
            elif self._calib is not None and (
                self.step == self._calib[0] + 5 or self.step % self.opts.replan_every == 0
            ):
                self.replan(agree)
        return loss

    def fit(
        self,
        steps: int | None = None,
        on_step: Callable[[int, float], None] | None = None,
        until_seconds: float | None = None,
        agree: Callable[[int], int] | None = None,
    ) -> dict:
        """Train until `steps` total steps (default: the planned total_steps), or until the training
        clock reaches `until_seconds`; returns losses, throughput and timing of this call."""
        losses: list[float] = []
        t0, n0 = time.perf_counter(), self.samples_seen
        for idx in self._batches():
            target = self.total_steps if steps is None else min(steps, self.total_steps)
            if self.step >= target or (until_seconds is not None and self.train_seconds >= until_seconds):
                break
            losses.append(self._timed_step(idx, agree))
            if on_step:
                on_step(self.step, losses[-1])
        dt = time.perf_counter() - t0
        k = max(1, min(20, len(losses) // 5 or 1))
        return {
            "steps": self.step,
            "planned_steps": self.total_steps,
            "losses": losses,
            "first_loss": float(sum(losses[:k]) / k) if losses else math.nan,
            "last_loss": float(sum(losses[-k:]) / k) if losses else math.nan,
            "seconds": dt,
            "train_seconds": self.train_seconds,
            "samples_per_s": (self.samples_seen - n0) / dt if dt > 0 else math.nan,
            "options": self.opts.model_dump(),
        }

    def state_dict(self) -> dict:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "step": self.step,
            "samples_seen": self.samples_seen,
            "train_seconds": self.train_seconds,
            "total_steps": self.total_steps,
            "calib": self._calib,
        }

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
        self.samples_seen = int(state.get("samples_seen", 0))
        self.train_seconds = float(state.get("train_seconds", 0.0))
        # A time-budget plan is resumed; a fixed step count comes from the options (a resumed run may be
        # given more steps than the first launch had).
        if self.opts.max_seconds is not None:
            self.total_steps = int(state.get("total_steps", self.opts.steps))
        calib = state.get("calib")
        self._calib = tuple(calib) if calib else None

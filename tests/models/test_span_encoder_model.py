"""Span-encoder family: word segments, valid offsets, zero-shot labels, save/load, and training on real data."""

from __future__ import annotations

import pytest
import torch

from b2ner_common.config import ModelConfig
from b2ner_common.models.base import load_predictor
from b2ner_common.models.span_encoder.features import align_entities, segment_texts
from b2ner_common.models.span_encoder.model import (
    SpanEncoderSettings,
    build_span_encoder,
    load_span_encoder,
    save_span_encoder,
    span_loss,
)
from b2ner_common.models.span_encoder.train import (
    SpanTrainer,
    SpanTrainOptions,
    examples_from_rows,
    sample_labels,
)

TEXTS = [
    "Barack Obama visited Paris in June 2015 with the U.S. delegation.",
    "浙商银行企业信贷部叶老桂博士则从另一个角度对五道门槛进行了解读。",
    "  Leading   spaces, tabs\tand   a café in Zürich (Switzerland)!  ",
    "",
]


@pytest.fixture(scope="module")
def model(minilm_path):
    torch.manual_seed(0)
    return build_span_encoder(str(minilm_path), SpanEncoderSettings(max_width=6, max_tokens=24))


def _check_offsets(texts, preds, labels):
    for text, ents in zip(texts, preds, strict=True):
        covered = set()
        for e in ents:
            assert 0 <= e.start < e.end <= len(text)
            assert text[e.start : e.end] == e.text
            assert e.label in labels
            assert 0.0 <= e.score <= 1.0
            span = set(range(e.start, e.end))
            assert not (span & covered), "decoded spans overlap"
            covered |= span


def test_span_encoder_segments_are_word_aligned_and_cover_long_texts(model):
    long_text = " ".join(f"word{i} Paris" for i in range(60))
    segs = segment_texts(model.tokenizer, [long_text, TEXTS[1], ""], max_tokens=24)
    assert len(segs[0]) > 1 and segs[2] == []
    assert all(len(s.token_ids) <= 24 for s in segs[0])
    words = [long_text[a:b] for s in segs[0] for a, b in s.word_spans]
    assert words == long_text.split()  # every word exactly once, in order, across segments
    assert [TEXTS[1][a:b] for s in segs[1] for a, b in s.word_spans] == list(TEXTS[1])  # CJK: a char a word


def test_span_encoder_align_entities_counts_what_it_cannot_place(model):
    text = "Barack Obama visited Paris."
    (seg,) = segment_texts(model.tokenizer, [text], 64)[0]
    ents = [(0, 12, "person"), (21, 26, "location"), (1, 6, "person"), (0, 26, "long")]
    aligned, skipped = align_entities(seg, ents, max_width=3)
    assert aligned == [(0, 1, "person"), (3, 3, "location")]
    assert skipped == 2  # "arack" is not on a word boundary; the 4-word span is wider than 3


def test_span_encoder_predictions_have_valid_offsets_for_any_labels(model):
    # threshold 0 makes the untrained model emit many spans: decoding and offsets are what is tested.
    labels = ["person", "programming language", "地址"]
    preds = model.predict(TEXTS, labels, batch_size=2, threshold=0.0)
    assert len(preds) == len(TEXTS) and preds[3] == []
    assert all(preds[i] for i in range(3))
    _check_offsets(TEXTS, preds, labels)


def test_span_encoder_zero_shot_label_sets_per_text_and_with_definitions(minilm_path):
    m = build_span_encoder(str(minilm_path), SpanEncoderSettings(use_definitions=True))
    per_text = [{"musical instrument": "an object played to make music"}, ["cuisine", "dish"], {"公司": ""}]
    preds = m.predict(TEXTS[:3], per_text, threshold=0.0)
    for ents, ls in zip(preds, per_text, strict=True):
        assert ents and {e.label for e in ents} <= set(ls)
    with pytest.raises(ValueError, match="label sets"):
        m.predict(TEXTS[:3], [["a"], ["b"]])


def test_span_encoder_save_load_round_trip_gives_identical_predictions(model, tmp_path):
    out = save_span_encoder(model, tmp_path / "se")
    again = load_span_encoder(out)
    # An untrained model scores ~sigmoid(-4): a low threshold gives many spans to compare.
    a = model.predict(TEXTS, ["person", "city"], threshold=0.01)
    b = again.predict(TEXTS, ["person", "city"], threshold=0.01)
    assert _same_predictions(a, b) and sum(map(len, a)) > 0
    cfg = ModelConfig(family="span-encoder", path=str(out))
    cfg.span.threshold = 0.01
    assert _same_predictions(load_predictor(cfg).predict(TEXTS, ["person", "city"]), a)


def _same_predictions(a, b, tol: float = 1e-4) -> bool:
    """Same spans and labels; scores equal up to float noise (other tests in the session change torch's
    thread count, and the module-scoped model's cached label vectors were computed under another one)."""
    if [[(e.start, e.end, e.label, e.text) for e in ents] for ents in a] != [
        [(e.start, e.end, e.label, e.text) for e in ents] for ents in b
    ]:
        return False
    return all(
        abs(x.score - y.score) <= tol
        for xs, ys in zip(a, b, strict=True)
        for x, y in zip(xs, ys, strict=True)
    )


def test_span_encoder_sample_labels_keeps_gold_consistent_with_shown_labels(model):
    import random

    (seg,) = segment_texts(model.tokenizer, ["Barack Obama visited Paris ."], 64)[0]
    seg.gold = [(0, 1, "person"), (3, 3, "location")]
    seg.labels = ["person", "location", "organization", "date"]
    opts = SpanTrainOptions(max_labels=4, pool_negatives=1, drop_positive=0.5)
    rng = random.Random(1)
    for _ in range(50):
        shown, gold = sample_labels(seg, ["city", "person", "animal", "food"], opts, rng)
        assert len(shown) <= 4 and len(set(shown)) == len(shown)
        assert all(g[2] in shown for g in gold)
        assert {g[2] for g in seg.gold if g[2] in shown} == {g[2] for g in gold}


def _conll_rows(corpora_dir, n):
    from b2ner_common.ingest.catalog import load_catalog
    from b2ner_common.ingest.units import ingest_tasks

    tasks = [t for t in load_catalog().tasks(corpora_dir, ["conll2003"]) if t.split == "train"]
    samples = [s for s in ingest_tasks(tasks).samples if s.entities][:n]
    names = {"PER": "person", "LOC": "location", "ORG": "organization", "MISC": "miscellaneous"}
    return [
        {
            "dataset": "conll2003",
            "text": s.text,
            "entities": [
                {"start": e.start, "end": e.end, "label": e.label, "type": names[e.label]} for e in s.entities
            ],
            "label_set": sorted(names.values()),
        }
        for s in samples
    ]


@pytest.mark.slow
@pytest.mark.corpora
def test_span_encoder_training_on_real_sample_lowers_loss_and_fits_its_data(
    corpora_dir, minilm_path, tmp_path
):
    torch.set_num_threads(2)
    rows = _conll_rows(corpora_dir, 160)
    m = build_span_encoder(str(minilm_path))
    examples, stats = examples_from_rows(rows, m)
    assert stats.aligned == stats.entities > 0  # CoNLL entities are whole tokens: all placed
    trainer = SpanTrainer(m, examples, SpanTrainOptions(batch_size=16, steps=80, lr_encoder=1e-4, seed=0))
    res = trainer.fit()
    assert res["last_loss"] < 0.5 * res["first_loss"]

    texts = [r["text"] for r in rows]
    preds = m.predict(texts, sorted({e["type"] for r in rows for e in r["entities"]}))
    gold = {(i, e["start"], e["end"], e["type"]) for i, r in enumerate(rows) for e in r["entities"]}
    pred = {(i, e.start, e.end, e.label) for i, p in enumerate(preds) for e in p}
    tp = len(gold & pred)
    f1 = 2 * tp / (len(gold) + len(pred))
    assert f1 > 0.3, f"span F1 on its own training data {f1:.2f}"
    _check_offsets(texts, preds, {"person", "location", "organization", "miscellaneous"})

    # Resume: a trainer restored from a state dict continues at the same step with the same batches.
    torch.save(trainer.state_dict(), tmp_path / "state.pt")
    state = torch.load(tmp_path / "state.pt", weights_only=True)  # no pickled code in a checkpoint
    save_span_encoder(m, tmp_path / "ckpt")
    m2 = load_span_encoder(tmp_path / "ckpt")
    t2 = SpanTrainer(m2, examples_from_rows(rows, m2)[0], SpanTrainOptions(batch_size=16, steps=80, seed=0))
    t2.load_state_dict(state)
    assert t2.step == trainer.step == 80
    assert next(t2._batches()) == next(trainer._batches())


def test_span_loss_focal_shifts_weight_from_easy_negatives_to_entities(model):
    (seg,) = segment_texts(model.tokenizer, ["Barack Obama visited Paris ."], 24)[0]
    seg.gold = [(0, 1, "person"), (3, 3, "location")]
    batch = model.collate([seg], [["person", "location", "date"]], with_targets=True)
    logits = model(batch, batch.labels).detach().requires_grad_(True)
    mask = model.span_mask(batch)

    def positive_share(**kw) -> float:
        (grad,) = torch.autograd.grad(span_loss(logits, batch, mask, **kw), logits)
        g = grad.abs()
        return float((g * batch.targets).sum() / g.sum())

    plain = positive_share()
    assert plain > 0 and torch.isclose(
        span_loss(logits, batch, mask), span_loss(logits, batch, mask, focal_gamma=0.0, positive_weight=1.0)
    )
    assert positive_share(focal_gamma=2.0) > plain
    assert positive_share(positive_weight=3.0) > plain
    assert span_loss(logits, batch, mask, focal_gamma=2.0) < span_loss(logits, batch, mask)


def test_span_encoder_higher_threshold_only_filters_lower_one(model):
    """Greedy best-first decoding: raising the threshold drops low-score entities and changes nothing else
    (bench/ablation.py scores every threshold from one prediction on this property)."""
    texts = [*TEXTS, " ".join(f"Mr Smith{i} flew from Berlin to Rome ." for i in range(8))]
    labels = ["person", "location", "date", "organization"]
    low = model.predict(texts, labels, threshold=0.01)
    scores = sorted(e.score for ents in low for e in ents)
    assert len(scores) > 20
    for thr in (scores[len(scores) // 4], scores[len(scores) // 2], scores[-3]):
        high = model.predict(texts, labels, threshold=thr)
        assert high == [
            [e for e in ents if e.score > thr] for ents in low
        ]  # decoding keeps score > threshold
        assert sum(map(len, high)) < len(scores)


def test_span_train_options_from_config_take_every_train_span_knob():
    from b2ner_common.config import SpanTrainerKnobs, load_config

    cfg = load_config(
        None,
        ["train.span.batch_size=7", "train.span.focal_gamma=0", "train.weight_decay=0.5", "train.seed=3"],
    )
    opts = SpanTrainOptions.from_config(cfg, steps=11)
    assert (opts.batch_size, opts.focal_gamma, opts.steps, opts.weight_decay, opts.seed) == (
        7,
        0.0,
        11,
        0.5,
        3,
    )
    # Every per-step knob of train.span reaches the trainer, with the same default on both sides.
    for name in SpanTrainerKnobs.model_fields:
        assert getattr(opts, name) == getattr(cfg.train.span, name)
        assert SpanTrainOptions.model_fields[name].default == SpanTrainerKnobs.model_fields[name].default


# -- uni-encoder (labels in the input), time budget, format version ---------------------------------


@pytest.fixture(scope="module")
def tiny(tiny_encoder_dir):
    return build_span_encoder(
        str(tiny_encoder_dir), SpanEncoderSettings(architecture="uni", max_width=4, span_dim=16)
    )


def test_span_encoder_features_prompt_places_markers_labels_and_words(tiny):
    from b2ner_common.models.span_encoder.features import collate_prompted

    text = "Barack Obama visited Paris ."
    (seg,) = segment_texts(tiny.tokenizer, [text], 64)[0]
    seg.gold = [(0, 1, "person"), (3, 3, "city")]
    tok = tiny.tokenizer
    batch = collate_prompted(
        [seg, seg],
        [["person", "city", "date"], ["date", "person"]],
        tiny.label_tokens,
        cls_id=tok.cls_token_id,
        sep_id=tok.sep_token_id,
        pad_id=tok.pad_token_id,
        marker_id=tok.sep_token_id,
        max_width=4,
        with_targets=True,
    )
    assert batch.labels == ["person", "city", "date"]
    ids = batch.input_ids[1].tolist()
    # Row 2: [CLS] <m> date <m> person [SEP] text [SEP]; its city column is not shown.
    assert tok.convert_ids_to_tokens(ids[:6]) == ["[CLS]", "[SEP]", "date", "[SEP]", "person", "[SEP]"]
    assert batch.label_index[1].tolist() == [3, 0, 1] and batch.label_mask[1].tolist() == [True, False, True]
    assert batch.marker_mask[1].nonzero().flatten().tolist() == [1, 3]
    # label_pooling="mean": each shown label averages its marker and its name tokens, nothing else.
    assert batch.label_pool[1, 0].nonzero().flatten().tolist() == [3, 4]
    assert torch.allclose(batch.label_pool[1].sum(-1), torch.tensor([1.0, 0.0, 1.0]))
    # Words point at their first sub-word after the prompt, in both rows (different prompt lengths).
    for b in range(2):
        firsts = batch.input_ids[b, batch.word_index[b, : seg.n_words]].tolist()
        assert tok.convert_ids_to_tokens(firsts) == ["barack", "obama", "visited", "paris", "."]
    assert batch.targets[0].sum() == 2 and batch.targets[1].sum() == 1  # gold only for shown labels


@pytest.mark.parametrize(("architecture", "pooling"), [("uni", "marker"), ("uni", "mean"), ("bi", "marker")])
def test_span_encoder_logits_shape_and_save_load_round_trip(
    tiny_encoder_dir, tmp_path, architecture, pooling
):
    m = build_span_encoder(
        str(tiny_encoder_dir),
        SpanEncoderSettings(architecture=architecture, label_pooling=pooling, max_width=4),
    )
    segs = [s for ss in segment_texts(m.tokenizer, TEXTS[:3], 32) for s in ss]
    labels = [["person", "city"], ["公司"], ["city", "person", "food"]][: len(segs)] + [["x"]] * (
        len(segs) - 3
    )
    batch = m.collate(segs, labels)
    logits = m(batch, batch.labels)
    assert logits.shape == (len(segs), batch.word_mask.shape[1], 4, len(batch.labels))
    again = load_span_encoder(save_span_encoder(m, tmp_path / f"{architecture}_{pooling}"))
    assert again.settings.architecture == architecture and (again.label_encoder is None) == (
        architecture == "uni"
    )
    a = m.predict(TEXTS, ["person", "city"], threshold=0.0)
    assert _same_predictions(a, again.predict(TEXTS, ["person", "city"], threshold=0.0)) and sum(map(len, a))


def test_span_encoder_old_format_version_errors_with_the_fix(tiny, tmp_path):
    import json

    out = save_span_encoder(tiny, tmp_path / "old")
    raw = json.loads((out / "span_encoder.json").read_text())
    raw["format_version"] = 1
    (out / "span_encoder.json").write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="format_version 1.*train the model again"):
        load_span_encoder(out)


def test_span_encoder_predict_splits_label_sets_larger_than_the_prompt(tiny_encoder_dir):
    m = build_span_encoder(
        str(tiny_encoder_dir), SpanEncoderSettings(architecture="uni", max_width=4, max_prompt_labels=2)
    )
    labels = ["person", "city", "date", "organization", "food"]
    seen, forward = [], m.forward

    def spy(batch, label_texts):
        seen.append((batch.label_mask.sum(1).max().item(), set(batch.labels)))
        return forward(batch, label_texts)

    m.forward = spy
    preds = m.predict(TEXTS, labels, threshold=0.0)
    _check_offsets(TEXTS, preds, set(labels))
    # No prompt holds more than two labels, and every label was scored for the texts.
    assert max(n for n, _ in seen) <= 2 and set().union(*(ls for _, ls in seen)) == set(labels)


def test_span_encoder_int8_predictions_have_valid_offsets(tiny_encoder_dir):
    from b2ner_common.models.span_encoder.model import quantize_for_inference

    m = build_span_encoder(str(tiny_encoder_dir), SpanEncoderSettings(architecture="uni", max_width=4))
    m = quantize_for_inference(m)
    _check_offsets(TEXTS, m.predict(TEXTS, ["person", "city"], threshold=0.0), {"person", "city"})


@pytest.mark.corpora
def test_span_train_tiny_uni_encoder_loss_falls_on_real_sample(corpora_dir, tiny_encoder_dir):
    torch.manual_seed(0)
    rows = _conll_rows(corpora_dir, 64)
    m = build_span_encoder(
        str(tiny_encoder_dir), SpanEncoderSettings(architecture="uni", max_width=6, span_dim=32)
    )
    examples, _ = examples_from_rows(rows, m)
    opts = SpanTrainOptions(batch_size=16, steps=100, lr_encoder=1e-3, lr_head=3e-3, seed=0)
    res = SpanTrainer(m, examples, opts).fit()
    assert res["steps"] == 100 and res["last_loss"] < 0.5 * res["first_loss"]


@pytest.mark.corpora
def test_span_train_time_budget_plans_steps_and_decays_lr_to_zero(corpora_dir, tiny_encoder_dir):
    rows = _conll_rows(corpora_dir, 64)
    m = build_span_encoder(str(tiny_encoder_dir), SpanEncoderSettings(max_width=6, span_dim=32))
    examples, _ = examples_from_rows(rows, m)
    opts = SpanTrainOptions(batch_size=8, steps=100_000, max_seconds=2.0, replan_every=10, seed=0)
    trainer = SpanTrainer(m, examples, opts)
    res = trainer.fit()
    assert trainer.done and res["planned_steps"] == res["steps"] < 100_000
    # The schedule fitted the plan: the LR has decayed (not exactly to 0 when the last re-plan shortened the
    # run after the scheduler's step, which a loaded machine makes likely).
    assert trainer.scheduler.get_last_lr()[0] < 0.25 * opts.lr_encoder
    # The plan itself, on a known clock: 10 steps in 1 s after calibration, 1 s left -> 10 more steps.
    planner = SpanTrainer(m, examples, SpanTrainOptions(steps=100_000, max_seconds=3.0))
    planner._calib, planner.step, planner.train_seconds = (3, 1.0), 13, 2.0
    assert planner.replan() == 23
    assert planner.replan(agree=lambda total: total - 5) == 18  # data-parallel ranks settle on one number
    # Resuming restores the plan and the clock.
    again = SpanTrainer(m, examples, opts)
    again.load_state_dict(trainer.state_dict())
    assert again.done and again.train_seconds == trainer.train_seconds


def test_span_encoder_prior_retypes_found_spans_by_frozen_label_similarity(model):
    """prior_weight moves a found span's label towards the frozen encoder's reading of its text (Paris is
    a city, Obama a politician) unless the trained scores disagree strongly; spans and scores stay."""
    text = "Obama flew to Paris ."
    (seg,) = segment_texts(model.tokenizer, [text], model.settings.max_tokens)[0]
    words = [text[a:b] for a, b in seg.word_spans]
    columns = ["city", "politician"]

    def decoded(obama, paris):
        probs = torch.zeros(seg.n_words, model.settings.max_width, 2)
        probs[words.index("Obama"), 0] = torch.tensor(obama)
        probs[words.index("Paris"), 0] = torch.tensor(paris)
        probs[words.index("flew"), 0] = torch.tensor([0.2, 0.1])  # not found at 0.3: untouched
        return [(seg, probs, columns)]

    ties = decoded([0.6, 0.6], [0.5, 0.5])
    model._retype_with_prior(ties, [text], 0.3, 10.0)
    probs = ties[0][1]
    assert probs[words.index("Obama"), 0].tolist() == pytest.approx([0.0, 0.6])
    assert probs[words.index("Paris"), 0].tolist() == pytest.approx([0.5, 0.0])
    assert probs[words.index("flew"), 0].tolist() == pytest.approx([0.2, 0.1])
    confident = decoded([0.99, 0.01], [0.01, 0.99])  # trained scores say the opposite, strongly
    model._retype_with_prior(confident, [text], 0.3, 0.1)
    assert confident[0][1][words.index("Obama"), 0].tolist() == pytest.approx([0.99, 0.0])


def test_span_encoder_prior_keeps_spans_scores_and_threshold_filtering(model):
    texts = [*TEXTS, "Angela Merkel met Obama in Berlin ."]
    labels = ["politician", "city", "date"]
    plain = model.predict(texts, labels, threshold=0.01)
    typed = model.predict(texts, labels, threshold=0.01, prior_weight=1e4)
    assert [[(e.start, e.end, e.score) for e in ents] for ents in typed] == [
        [(e.start, e.end, e.score) for e in ents] for ents in plain
    ]
    scores = sorted(e.score for ents in typed for e in ents)
    thr = scores[len(scores) // 2]
    high = model.predict(texts, labels, threshold=thr, prior_weight=1e4)
    assert high == [[e for e in ents if e.score > thr] for ents in typed]


def test_span_encoder_prior_caches_span_vectors_and_bounds_the_cache(model, monkeypatch):
    import b2ner_common.models.span_encoder.model as span_model

    texts = [*TEXTS, "Angela Merkel met Obama in Berlin ."]
    labels = ["politician", "city", "date"]
    model._span_cache.clear()
    encoded: list[str] = []
    real = model.frozen_vectors
    monkeypatch.setattr(model, "frozen_vectors", lambda ts, **kw: encoded.extend(ts) or real(ts, **kw))
    first = model.predict(texts, labels, threshold=0.01, prior_weight=1e4)
    n_first = len(encoded)
    again = model.predict(texts, labels, threshold=0.01, prior_weight=1e4)
    # Only the spans decoding keeps are encoded (not the overlapping candidates it drops)...
    assert sorted(encoded) == sorted({e.text for ents in first for e in ents})
    # ...and the second pass encodes no span text again.
    assert n_first > 0 and len(encoded) == n_first
    assert again == first
    monkeypatch.setattr(span_model, "SPAN_CACHE_SIZE", 3)
    model._span_cache.clear()
    bounded = model.predict(texts, labels, threshold=0.01, prior_weight=1e4)
    assert len(model._span_cache) == 3 and bounded == first  # eviction changes no result


def test_span_encoder_prior_needs_the_bi_encoder_label_tower(tiny_encoder_dir):
    uni = build_span_encoder(str(tiny_encoder_dir), SpanEncoderSettings(architecture="uni", threshold=0.0))
    with pytest.raises(ValueError, match="prior_weight needs the frozen label tower"):
        uni.predict(["Paris is nice ."], ["city"], prior_weight=5.0)


def test_span_encoder_prior_weight_defaults_saved_and_overridden(tiny_encoder_dir, tmp_path):
    import json

    from b2ner_common.config import load_config
    from b2ner_common.models.span_encoder.model import CONFIG_FILE, DEFAULT_PRIOR_WEIGHT

    assert SpanEncoderSettings().prior_weight == DEFAULT_PRIOR_WEIGHT
    assert SpanEncoderSettings(architecture="uni").prior_weight == 0.0
    saved = save_span_encoder(build_span_encoder(str(tiny_encoder_dir)), tmp_path / "m")
    assert load_span_encoder(saved).settings.prior_weight == DEFAULT_PRIOR_WEIGHT
    raw = json.loads((saved / CONFIG_FILE).read_text())
    del raw["prior_weight"]  # a model saved before the prior existed keeps its trained typing
    (saved / CONFIG_FILE).write_text(json.dumps(raw))
    assert load_span_encoder(saved).settings.prior_weight == 0.0
    cfg = load_config(None, [f"model.path={saved}", "model.span.prior_weight=7.5"])
    assert load_predictor(cfg.model).prior_weight == 7.5

"""The official B2NER protocol: fixed label order, the official group / exclusion / overall averages worked
out by hand from the definitions in B2NER's src/calculate_f1.py and test_tasks.json, and the CLI report."""

import json
import math

import pytest

from b2ner_cli.main import main
from b2ner_common.config import load_config
from b2ner_common.evaluation.benchmark import GoldSet, evaluate_predictor
from b2ner_common.evaluation.official import (
    OFFICIAL_TEST_SETS,
    aggregate_official,
    canonical_dataset,
    fixed_label_order,
    official_over_runs,
)


def by_name(groups):
    return {g.name: g for g in groups}


# Our OOD-DEV sets, in their own spelling, with simple scores.
EN = {
    "crossner_ai": 60.0,
    "crossner_literature": 70.0,
    "crossner_music": 80.0,
    "crossner_politics": 70.0,
    "crossner_science": 70.0,
    "mit_movie": 50.0,
    "mit_restaurant": 90.0,
}
ZH = {"weibo": 40.0, "cluener": 70.0, "ccks2021_address": 55.0}


def langs_of(*parts):
    return {d: lang for lang, part in parts for d in part}


def test_official_names_map_to_ours():
    assert [canonical_dataset(d) for d in OFFICIAL_TEST_SETS["NER_en"]] == list(EN)
    zh = [canonical_dataset(d) for d in OFFICIAL_TEST_SETS["NER_zh"]]
    assert zh == ["cail2021", "ccks2021_address", "cluener", "cmeee", "math_high", "weibo", "zh_ontonotes4"]
    assert canonical_dataset("CMeEEV2") == canonical_dataset("CBLUE") == "cmeee"


def test_official_groups_hand_computed_and_missing_named():
    groups = by_name(aggregate_official({**EN, **ZH}, langs_of(("en", EN), ("zh", ZH))))
    en, zh, overall = groups["NER_en"], groups["NER_zh"], groups["overall"]
    assert en.f1 == pytest.approx(490 / 7) and en.complete and en.datasets == sorted(EN)
    # Chinese: 3 of the 7 official sets here; the average is over those 3, and the other 4 are named.
    assert zh.f1 == pytest.approx(165 / 3) and not zh.complete
    assert zh.missing == ["cail2021", "cmeee", "math_high", "zh_ontonotes4"]
    # Overall: the mean over all 10 datasets (655 / 10), not the mean of the group means (62.5).
    assert overall.f1 == pytest.approx(65.5) and len(overall.datasets) == 10
    assert overall.missing == ["cail2021", "cmeee", "math_high", "zh_ontonotes4"]
    # Sub-averages the official script computes but does not print.
    unseen, mix = groups["NER_zh unseen"], groups["NER_zh mix"]
    assert unseen.f1 == pytest.approx(55.0) and unseen.missing == ["cail2021", "math_high"]
    assert mix.f1 == pytest.approx(55.0) and mix.missing == ["cmeee", "zh_ontonotes4"]
    assert not unseen.printed and not mix.printed and en.printed and overall.printed


def test_official_full_benchmark_in_official_spelling():
    en = dict(zip(OFFICIAL_TEST_SETS["NER_en"], [60, 70, 80, 70, 70, 50, 90], strict=True))
    zh = dict(zip(OFFICIAL_TEST_SETS["NER_zh"], [10, 20, 30, 40, 50, 60, 70], strict=True))
    extra = {"conll2003": 99.0}  # not an official test set: averaged (as the official script does), flagged
    groups = by_name(
        aggregate_official({**en, **zh, **extra}, langs_of(("en", en), ("zh", zh), ("en", extra)))
    )
    assert groups["NER_en"].f1 == pytest.approx((490 + 99) / 8) and groups["NER_en"].extra == ["conll2003"]
    assert groups["NER_en"].missing == []
    assert groups["NER_zh"].f1 == pytest.approx(40.0) and groups["NER_zh"].complete
    assert groups["overall"].f1 == pytest.approx((490 + 280 + 99) / 15) and groups["overall"].complete
    # unseen: CAIL2021, math-high, CCKS2021address; mix: CLUENER, CMeEEV2 (= CBLUE), weibo, zh-ontonotes.
    assert groups["NER_zh unseen"].f1 == pytest.approx((10 + 50 + 20) / 3)
    assert groups["NER_zh mix"].f1 == pytest.approx((30 + 40 + 60 + 70) / 4)


def test_official_exclusions_scored_but_never_averaged():
    zh = {**ZH, "math-junior": 0.0, "CAIL2022": 100.0}
    groups = by_name(aggregate_official(zh, {d: "zh" for d in zh}))
    assert groups["NER_zh"].f1 == pytest.approx(55.0)
    assert groups["NER_zh"].excluded == ["cail2022", "math_junior"]
    assert groups["overall"].f1 == pytest.approx(55.0) and "math_junior" not in groups["overall"].datasets
    # An official group with nothing scored has no score (not 0) and names all its members.
    assert groups["NER_en"].f1 is None and len(groups["NER_en"].missing) == 7


def test_official_over_runs_mean_sd_per_group():
    langs = langs_of(("en", EN), ("zh", ZH))
    run2 = {**EN, "crossner_ai": 74.0, **ZH}  # NER_en 504/7 = 72
    rows = {r["name"]: r for r in official_over_runs([({**EN, **ZH}, langs), (run2, langs)])}
    assert rows["NER_en"]["f1"] == pytest.approx(71.0) and rows["NER_en"]["f1_sd"] == pytest.approx(
        math.sqrt(2)
    )
    assert rows["NER_en"]["runs"] == 2 and rows["NER_zh"]["f1_sd"] == 0.0
    assert rows["NER_zh"]["missing"] == ["cail2021", "cmeee", "math_high", "zh_ontonotes4"]
    # A dataset scored in one run only is missing from the other: named for the group.
    rows = {r["name"]: r for r in official_over_runs([(EN, langs), ({**EN, **ZH}, langs)])}
    assert "weibo" in rows["NER_zh"]["missing"] and rows["NER_zh"]["runs"] == 1


class RecordingPredictor:
    """Remembers the label list of every prompt; predicts nothing."""

    name = "recording"

    def __init__(self):
        self.label_sets = []

    def predict(self, texts, labels):
        self.label_sets.extend(list(ls) for ls in labels)
        return [[] for _ in texts]


LABELS = ["programming language", "field of study", "researcher", "university", "algorithm", "task"]


def gold_set():
    texts = [f"sentence {i} ." for i in range(12)]
    return GoldSet("crossner_ai", "en", "dev", list(LABELS), texts, [[] for _ in texts])


def test_official_label_order_fixed_across_sentences_and_seeds():
    golds = {"crossner_ai": gold_set()}
    seen = []
    for seed in (0, 1, 7):
        rec = RecordingPredictor()
        res = evaluate_predictor(rec, golds, [seed], name="x", protocol="official")
        assert res.protocol == "official"
        seen.append(rec.label_sets)
    assert seen[0] == seen[1] == seen[2] == [LABELS] * 12
    # Our protocol shuffles per sentence and per seed.
    ours = []
    for seed in (0, 1):
        rec = RecordingPredictor()
        evaluate_predictor(rec, golds, [seed], name="x")
        ours.append(rec.label_sets)
    assert ours[0] != ours[1] and len({tuple(ls) for ls in ours[0]}) > 1
    assert all(sorted(ls) == sorted(LABELS) for ls in ours[0])


def test_official_label_orders_given_per_dataset():
    order = list(reversed(LABELS))
    rec = RecordingPredictor()
    evaluate_predictor(
        rec,
        {"crossner_ai": gold_set()},
        [0],
        name="x",
        protocol="official",
        label_orders={"crossner_ai": order},
    )
    assert rec.label_sets == [order] * 12
    with pytest.raises(ValueError, match=r"crossner_ai.*not labels of it: \['person'\].*missing: \['task'\]"):
        fixed_label_order("crossner_ai", LABELS, [*LABELS[:-1], "person"])
    with pytest.raises(ValueError, match="repeated"):
        fixed_label_order("crossner_ai", LABELS, [*LABELS, "task"])


def test_official_config_knob_typed_and_label_seeds_refused():
    cfg = load_config(None, ["evaluate.protocol=official", "evaluate.label_orders={weibo: [a, b]}"])
    assert cfg.evaluate.protocol == "official" and cfg.evaluate.label_orders == {"weibo": ["a", "b"]}
    with pytest.raises(Exception, match="protocol"):
        load_config(None, ["evaluate.protocol=unofficial"])
    with pytest.raises(Exception, match="evaluate.models"):
        load_config(None, ["evaluate.protocol=official", "evaluate.seeds=[0,1]"])


def write_predictions(path, ai_pred):
    recs = [
        ("CrossNER_AI", "en", "algorithm: SVM; task: machine translation", ai_pred),
        ("mit-movie", "en", "actor: tom hanks", "actor: Tom Hanks"),
        ("weibo", "zh", "人名: 叶老桂", "人名: 叶老桂"),
        ("math-junior", "zh", "数学概念: 函数", "None"),
    ]
    with open(path, "w", encoding="utf-8") as f:
        for ds, lang, gt, pred in recs:
            rec = {
                "Task": "NER",
                "Dataset": ds,
                "Language": lang,
                "Instance": {"id": "0", "sentence": "s", "instruction": "", "ground_truth": gt},
                "Prediction": pred,
            }
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return path


def test_official_report_and_cli_from_prediction_files(tmp_path):
    f0 = write_predictions(tmp_path / "s0.jsonl", "algorithm: svm")  # AI: P 1, R 1/2, F1 2/3
    f1 = write_predictions(tmp_path / "s1.jsonl", "algorithm: SVM; task: machine translation")  # AI F1 1
    rep = tmp_path / "rep"
    args = ["evaluate", "-p", str(f0), "-p", str(f1), "--report-dir", str(rep), "--protocol", "official"]
    assert main(args) == 0
    scores = json.loads((rep / "scores.json").read_text())[0]
    assert scores["protocol"] == "official"
    groups = {g["name"]: g for g in scores["official"]}
    # NER_en per run (file): mean of CrossNER_AI and mit-movie; then mean +/- sample sd over the 2 runs.
    en_runs = [(200 / 3 + 100) / 2, 100.0]
    assert groups["NER_en"]["f1"] == pytest.approx(sum(en_runs) / 2)
    assert groups["NER_en"]["f1_sd"] == pytest.approx(abs(en_runs[0] - en_runs[1]) / math.sqrt(2))
    assert len(groups["NER_en"]["missing"]) == 5
    # math-junior is scored (F1 0) but excluded: the Chinese average is weibo's 100, not 50.
    assert groups["NER_zh"]["f1"] == pytest.approx(100.0) and groups["NER_zh"]["excluded"] == ["math_junior"]
    assert groups["overall"]["f1"] == pytest.approx(sum((e * 2 + 100) / 3 for e in en_runs) / 2)
    md = (rep / "report.md").read_text()
    assert "### Official aggregation (B2NER `src/calculate_f1.py`)" in md
    assert "| NER_zh | **100.0 ± 0.0** | 1 | cail2021, ccks2021_address, cluener, cmeee, math_high" in md
    assert "excluded as in the official code: math_junior" in md and "not comparable" in md
    assert "Runs: 2 (official protocol)" in md and "| **en average**" not in md
    # Our protocol keeps the per-language rows and writes no official table.
    assert main(["evaluate", "-p", str(f0), "--report-dir", str(tmp_path / "ours")]) == 0
    md = (tmp_path / "ours" / "report.md").read_text()
    assert "| **en average**" in md and "Official aggregation" not in md


def test_official_cli_model_on_warehouse_with_label_orders(tmp_path, capsys):
    import pyarrow as pa

    from b2ner_common import tables
    from b2ner_common.schema import SILVER_SAMPLES

    text = "Python is used in machine learning ."
    ents = [
        {"start": 0, "end": 6, "label": "programlang", "text": "Python", "type": "programming language"},
        {"start": 18, "end": 34, "label": "field", "text": "machine learning", "type": "field of study"},
    ]
    row = {
        "sample_id": "a1",
        "dataset": "crossner_ai",
        "split": "dev",
        "lang": "en",
        "text": text,
        "entities": ents,
        "source": "x:1",
        "repairs": 0,
        "label_set": ["programming language", "field of study"],
    }
    wh = tmp_path / "wh"
    tables.write_table(
        tables.table_path(wh, "silver/samples"), pa.Table.from_pylist([row], schema=SILVER_SAMPLES)
    )
    lex = tmp_path / "lex.json"
    lex.write_text(json.dumps({"programming language": ["Python"]}))
    base = ["evaluate", "--model", str(lex), "--family", "lexicon", "--datasets", "crossner_ai"]
    base += ["--protocol", "official", f"warehouse={wh}"]
    order = "evaluate.label_orders={crossner_ai: [field of study, programming language]}"
    assert main([*base, "--report-dir", str(tmp_path / "rep"), order]) == 0
    groups = {g["name"]: g for g in json.loads((tmp_path / "rep" / "scores.json").read_text())[0]["official"]}
    assert groups["NER_en"]["f1"] == pytest.approx(200 / 3) and groups["NER_en"]["datasets"] == [
        "crossner_ai"
    ]
    assert "one fixed order per dataset" in (tmp_path / "rep" / "report.md").read_text()
    # A label order that is not the dataset's label set fails with the dataset named.
    bad = "evaluate.label_orders={crossner_ai: [person]}"
    assert main([*base, "--report-dir", str(tmp_path / "rep2"), bad]) == 2
    assert "evaluate.label_orders.crossner_ai" in capsys.readouterr().err

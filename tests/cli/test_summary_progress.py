"""The CLI's progress lines and the main job's summary tables (no engine needed)."""

import io

from rich.console import Console

from b2ner_cli.progress import StageProgress
from b2ner_cli.summary import f1_table
from b2ner_common.evaluation.benchmark import DatasetScore, EvalResult
from b2ner_common.metrics import PRF


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=160), out


def test_progress_without_terminal_prints_one_line_per_ten_percent():
    console, out = _console()
    with StageProgress(console, "embed", unit="rows", total=1000) as bar:
        for done in range(0, 1001, 7):
            bar.update(done)
        bar.update(1000)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("embed: 0% (0/1,000 rows)")
    assert lines[-1].startswith("embed: 100% (1,000/1,000 rows)")
    assert len(lines) == 11  # 0%, 10%, ..., 100%: a CI log stays short


def test_summary_f1_table_shows_datasets_and_language_averages():
    def score(ds, lang, f1):
        prf = PRF(tp=int(f1 * 100), fp=100 - int(f1 * 100), fn=100 - int(f1 * 100))
        return DatasetScore(ds, lang, 0, 10, prf, prf)

    res = EvalResult(
        "m", [score("crossner_ai", "en", 0.5), score("mit_movie", "en", 0.3), score("weibo", "zh", 0.2)]
    )
    console, out = _console()
    console.print(f1_table(res))
    text = out.getvalue()
    assert "crossner_ai" in text and "weibo" in text
    assert "average (2 sets)" in text and "40.0" in text  # (50 + 30) / 2, unweighted over datasets

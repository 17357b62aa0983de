"""The main job's size caps (run.*) fill only the stage settings a user left unset."""

from b2ner_cli.commands.run import main_job_caps
from b2ner_common.config import load_config


def test_run_caps_fill_unset_stage_settings_only():
    cfg = load_config(None, ["run.candidates_per_dataset=80", "run.train_minutes=2.5", "run.eval_samples=40"])
    capped = main_job_caps(cfg)
    assert (
        capped.select.max_candidates_per_dataset,
        capped.train.span.max_minutes,
        capped.train.max_steps,
        capped.evaluate.max_samples,
    ) == (80, 2.5, None, 40)
    # The caller's config is untouched: stage commands run without the main job's caps.
    assert cfg.select.max_candidates_per_dataset is None and cfg.train.span.max_minutes is None

    own = load_config(
        None, ["select.max_candidates_per_dataset=7", "train.max_steps=3", "evaluate.max_samples=5"]
    )
    kept = main_job_caps(own)
    assert (kept.select.max_candidates_per_dataset, kept.train.max_steps, kept.evaluate.max_samples) == (
        7,
        3,
        5,
    )
    assert kept.train.span.max_minutes is None  # an explicit step count is not replaced by a time budget
    minutes = main_job_caps(load_config(None, ["train.span.max_minutes=1"]))
    assert minutes.train.span.max_minutes == 1 and minutes.train.max_steps is None

    uncapped = main_job_caps(load_config(None, ["run.candidates_per_dataset=null", "run.train_minutes=null"]))
    assert uncapped.select.max_candidates_per_dataset is None and uncapped.train.span.max_minutes is None

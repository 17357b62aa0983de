"""Small per-epoch evaluation hook for LLM SFT: greedy answers on a few OOD-DEV samples -> B2NER F1.

Kept deliberately small (the `b2ner evaluate` stage is the full protocol): prompts use each dataset's
whole label set (no dropout/negatives), answers are scored with `metrics.b2ner_f1` on the answer strings.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from b2ner_common.prompts import LabelNamer, format_answer, format_prompt


def eval_examples(
    rows: Sequence[Mapping[str, Any]], label_name: LabelNamer | None = None
) -> list[tuple[str, str, str]]:
    """(dataset, prompt, gold answer) per silver row, with the dataset's full label set."""
    out = []
    for r in rows:
        lang = r.get("lang") or "en"
        name = (lambda t, lang=lang: label_name(t, lang)) if label_name else (lambda t: t)
        ents = sorted(r.get("entities") or [], key=lambda e: (e["start"], e["end"]))
        gold = format_answer([(name(e["type"]), e["text"]) for e in ents if e.get("type")])
        prompt = format_prompt(r["text"], [name(t) for t in r.get("label_set") or []], lang)
        out.append((r["dataset"], prompt, gold))
    return out


def generate_answers(
    model: Any, tokenizer: Any, prompts: Sequence[str], *, max_new_tokens: int = 128, batch_size: int = 8
) -> list[str]:
    """Greedy answers (left padding, as at inference)."""
    import torch

    device = next(model.parameters()).device
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    answers: list[str] = []
    try:
        for s in range(0, len(prompts), batch_size):
            enc = tokenizer(list(prompts[s : s + batch_size]), return_tensors="pt", padding=True).to(device)
            with torch.inference_mode():
                out = model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=tokenizer.eos_token_id,
                )
            answers.extend(
                tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
            )
    finally:
        tokenizer.padding_side = side
    return answers


def evaluate_rows(
    model: Any,
    tokenizer: Any,
    rows: Sequence[Mapping[str, Any]],
    *,
    label_name=None,
    max_new_tokens: int = 128,
    batch_size: int = 8,
) -> dict[str, float]:
    """{"eval/<dataset>/f1": F1, ..., "eval/mean_f1": unweighted mean} on `rows`."""
    from b2ner_common.metrics import b2ner_f1, language_average

    exs = eval_examples(rows, label_name)
    if not exs:
        return {}
    was_training = model.training
    model.eval()
    try:
        answers = generate_answers(
            model, tokenizer, [p for _, p, _ in exs], max_new_tokens=max_new_tokens, batch_size=batch_size
        )
    finally:
        model.train(was_training)
    by_ds: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for (ds, _, gold), ans in zip(exs, answers, strict=True):
        by_ds[ds][0].append(gold)
        by_ds[ds][1].append(ans)
    f1 = {ds: b2ner_f1(g, p).f1 for ds, (g, p) in sorted(by_ds.items())}
    out = {f"eval/{ds}/f1": v for ds, v in f1.items()}
    out["eval/mean_f1"] = language_average(f1)
    return out

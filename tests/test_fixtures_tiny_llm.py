"""The tiny offline LLM fixture loads like a user's local model directory and generates."""

from transformers import AutoModelForCausalLM, AutoTokenizer


def test_fixtures_tiny_llm_loads_and_generates(tiny_llm_dir):
    tok = AutoTokenizer.from_pretrained(tiny_llm_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_llm_dir)
    text = "浙商银行 Barack Obama"
    assert tok.decode(tok(text)["input_ids"]) == text
    out = model.generate(**tok(text, return_tensors="pt"), max_new_tokens=5, do_sample=False)
    assert out.shape[1] > len(tok(text)["input_ids"])

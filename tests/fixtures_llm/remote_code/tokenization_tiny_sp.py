"""A slow SentencePiece tokenizer, as custom-code models ship (InternLM2's tokenizer is one).

It calls `SentencePieceProcessor.encode` on each piece of text, like the legacy Llama-2 tokenizer: with a
model trained without whitespace normalization, " person" alone becomes ["▁", "▁person"] while after
"Answer:" it is ["▁person"].
"""

import shutil
from pathlib import Path

from transformers import PreTrainedTokenizer


class TinySPTokenizer(PreTrainedTokenizer):
    vocab_files_names = {"vocab_file": "tokenizer.model"}
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(
        self, vocab_file, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>", **kw
    ):
        import sentencepiece

        self.vocab_file = vocab_file
        self.sp = sentencepiece.SentencePieceProcessor(model_file=str(vocab_file))
        super().__init__(
            bos_token=bos_token, eos_token=eos_token, unk_token=unk_token, pad_token=pad_token, **kw
        )

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def get_vocab(self):
        vocab = {self.sp.id_to_piece(i): i for i in range(self.vocab_size)}
        vocab.update(self.added_tokens_encoder)
        return vocab

    def _tokenize(self, text, **kwargs):
        return self.sp.encode(text, out_type=str)

    def _convert_token_to_id(self, token):
        return self.sp.piece_to_id(token)

    def _convert_id_to_token(self, index):
        return self.sp.id_to_piece(index)

    def convert_tokens_to_string(self, tokens):
        return self.sp.decode(tokens)

    def build_inputs_with_special_tokens(self, token_ids_0, token_ids_1=None):
        return [self.bos_token_id] + token_ids_0 + (token_ids_1 or [])

    def save_vocabulary(self, save_directory, filename_prefix=None):
        out = Path(save_directory) / ((filename_prefix + "-" if filename_prefix else "") + "tokenizer.model")
        if Path(self.vocab_file).resolve() != out.resolve():
            shutil.copyfile(self.vocab_file, out)
        return (str(out),)

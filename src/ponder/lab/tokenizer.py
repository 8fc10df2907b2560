"""A character-level tokenizer for lab models, built with ``tokenizers``.

Every printable ASCII character and "\\n" is one token; ``<pad>``, ``<s>``, ``</s>`` and ``<unk>``
are the special tokens (ids 0-3). Character level keeps the vocabulary at 100 and makes a token
count a character count, which is what tiny arithmetic models want: a digit is always one token, so
carries line up (BPE would merge "123" into arbitrary pieces).

Choices:

* No BOS is added, ever (no post-processor): ``len(ids) == len(text)``, and the prompt the ``hf:``
  backend renders through the chat template (``format.CHAT_TEMPLATE``) tokenizes to exactly the ids
  the model was trained on. ``<s>`` exists only so the vocabulary has the usual four specials.
* ``</s>`` ends every training completion and stops generation; ``<pad>`` pads batches.
* Other characters (tabs, non-ASCII) become ``<unk>``: lab tasks never produce them.

The result is a ``transformers.PreTrainedTokenizerFast``, saved with ``save_pretrained`` and loaded
back by ``AutoTokenizer`` (and so by ``ponder.models.resolve("hf:DIR")``) like any Hub tokenizer.
"""

from __future__ import annotations

import string

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from ponder.lab import format

PAD, BOS, EOS, UNK = "<pad>", "<s>", format.EOS, "<unk>"
SPECIALS = [PAD, BOS, EOS, UNK]
# string.printable minus \t \r \x0b \x0c: the 95 printable ASCII characters and "\n".
CHARS = sorted(set(string.printable) - set("\t\r\x0b\x0c"))


def make_char_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {tok: i for i, tok in enumerate(SPECIALS + CHARS)}
    tk = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    # Each character is its own "word"; the specials are matched whole before this split runs.
    tk.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tk.decoder = decoders.Fuse()  # concatenate, no spaces between characters
    tk.add_special_tokens(SPECIALS)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        model_max_length=1024,
        padding_side="right",
        clean_up_tokenization_spaces=False,
    )
    tok.chat_template = format.CHAT_TEMPLATE
    return tok

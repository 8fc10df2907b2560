"""Tiny Llama-style models for the lab, saved as ordinary Hugging Face model directories.

The architecture is transformers' ``LlamaForCausalLM`` (pre-norm RMSNorm, RoPE, SwiGLU MLP,
grouped-query attention switched off), only small. Sizes, with the 100-token character vocabulary
and tied input/output embeddings:

=======  ======  ======  =====  ============  ==========
size     hidden  layers  heads  intermediate  parameters
=======  ======  ======  =====  ============  ==========
tiny     128     4       4      384           ~0.87 M
deep     128     8       4      384           ~1.7 M
small    256     6       8      768           ~5.1 M
=======  ======  ======  =====  ============  ==========

``max_position_embeddings`` is 1024: RoPE has no learned positions, so this costs no parameters;
lab traces are a few hundred characters, and what lies beyond the trained lengths is simply
untrained. ``save`` writes safetensors weights, the config, a generation config whose EOS is the
tokenizer's ``</s>`` and the tokenizer, so ``ponder.models.resolve("hf:DIR")`` loads the result
unchanged.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase

from ponder.errors import UserError

_DIMS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
SIZES: dict[str, dict[str, int]] = {
    "tiny": dict(zip(_DIMS, (128, 4, 4, 384))),
    # tiny's width at twice its depth: about twice the cost of a step, for a model that must carry
    # multi-digit arithmetic through more layers (issue 13's capacity probe)
    "deep": dict(zip(_DIMS, (128, 8, 4, 384))),
    "small": dict(zip(_DIMS, (256, 6, 8, 768))),
}
DEVICES = ("auto", "cpu", "cuda", "mps")


def make_tiny_llama(
    tokenizer: PreTrainedTokenizerBase, size: str = "tiny", seed: int = 0, **overrides
) -> LlamaForCausalLM:
    """A freshly initialised Llama for ``tokenizer``; ``overrides`` go to ``LlamaConfig``."""
    if size not in SIZES:
        raise UserError(f"unknown model size {size!r}; sizes: {', '.join(SIZES)}")
    dims = {**SIZES[size], **overrides}
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        num_key_value_heads=dims["num_attention_heads"],
        max_position_embeddings=1024,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **dims,
    )
    torch.manual_seed(seed)  # the initial weights are part of the run's identity
    model = LlamaForCausalLM(config)
    _set_generation_defaults(model, tokenizer)
    return model


def _set_generation_defaults(model, tokenizer) -> None:
    gc = model.generation_config
    gc.eos_token_id = tokenizer.eos_token_id
    gc.pad_token_id = tokenizer.pad_token_id
    gc.bos_token_id = tokenizer.bos_token_id
    # Never emit <pad>, <s> or <unk>: they decode to nothing (the hf backend's char bookkeeping
    # and a reader would both be confused by invisible tokens).
    gc.suppress_tokens = [
        t for t in (tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.unk_token_id)
        if t is not None
    ]


def load_start(path: str, **kwargs):
    """(tokenizer, model) of the ``--from`` folder; a folder transformers cannot load (weights or
    tokenizer files missing or broken) is a one-line error, not a traceback."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ponder.problems.errors import one_line

    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except Exception as e:  # OSError, ValueError, KeyError...: all mean "not a model we can load"
        raise UserError(f"--from {path} is not a model directory ponder can load ({one_line(e)})") from None
    return tokenizer, model


def n_params(model) -> int:
    """Distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters())


def save(model, tokenizer, out_dir: str | Path) -> Path:
    """Write ``model`` and ``tokenizer`` to ``out_dir`` as a Hugging Face model directory."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _set_generation_defaults(model, tokenizer)
    model.save_pretrained(out)  # safetensors
    tokenizer.save_pretrained(out)
    return out


def tf32_for(device: str) -> bool | None:
    """The trainers' ``tf32``: True on an Ampere or newer GPU (float32 weights, TF32 matrix
    products: ~3e-4 relative error in a product, several times the speed); None (torch's default)
    everywhere else, where asking for it would be an error."""
    if device == "cuda" and torch.cuda.get_device_capability()[0] >= 8:
        return True
    return None


def pick_device(device: str = "auto") -> str:
    """"auto" -> cuda, else mps, else cpu; an explicit device must exist."""
    if device not in DEVICES:
        raise UserError(f"--device takes {', '.join(DEVICES)}; got {device!r}")
    cuda = torch.cuda.is_available()
    mps = torch.backends.mps.is_available()
    if device == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if (device == "cuda" and not cuda) or (device == "mps" and not mps):
        raise UserError(f"--device {device}: no {device} device here (try --device auto)")
    return device

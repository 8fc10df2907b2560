"""The lab: tiny reasoning models trained here (char tokenizer, search traces, SFT, GRPO on TRL,
synthetic data), and the checkpoints shipped as ``lab:NAME``."""

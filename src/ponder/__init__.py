"""ponder: make language models think, and measure what each unit of compute buys."""

__version__ = "0.1.0"

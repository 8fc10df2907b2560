"""Deep research over a local corpus (and the web where reachable), with checked citations.

One job per module:

- ``corpus``: read a folder's .txt/.md/.html/.pdf files into text, cut them into passages;
- ``index``: the tantivy full-text index of the passages, cached by the files' paths, sizes and
  modification times;
- ``web``: a SearXNG-compatible search provider, pages fetched with httpx, text by trafilatura;
- ``loop``: the research loop (plan, search, read, note, assess, re-plan, write), typed events;
- ``notes``: notes that are quotes (a model's note matched to a sentence of what it read);
- ``journal``: every completed step fsync'd to ``RUN_DIR/journal.jsonl``, replayed by ``--resume``;
- ``citations``: each report sentence's citations checked (word overlap, then the LLM judge);
- ``report``: ``RUN_DIR/report.md`` with its bibliography and counts line;
- ``strategy``: the loop as the ``research`` strategy, for ``ponder bench --task research``;
- ``cli``: ``ponder research``.
"""

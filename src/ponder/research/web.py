"""The web as a research source, where it is reachable: a SearXNG-compatible JSON search
endpoint, pages fetched with httpx, their main text extracted with trafilatura.

``WebSource(url).search(query, k)`` asks ``url?q=QUERY&format=json`` (SearXNG's API: a JSON
object whose ``results`` hold ``url``, ``title`` and ``content``), fetches the first ``pages``
result pages concurrently, cuts their text into passages (``corpus.passages``, the page URL as
the passage's file) and returns the ``k`` passages that best match the query by BM25 over those
pages (an in-memory tantivy index): the search engine chooses pages, ponder chooses passages.
gpt-researcher and open_deep_research do the same with Tavily-like APIs; unlike them the
provider is one plain HTTP endpoint, so a self-hosted SearXNG (or the tests' local server) is
enough.

A page that cannot be fetched or holds no text is skipped (``errors`` keeps why); an endpoint
that cannot be reached or answers no JSON gives no passages for that query, and the loop's dead
end detection takes it from there. A run's searches are journaled with their passages, so a
resumed run does not fetch again.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

from ponder.research.corpus import Document, Passage, html_text, need, passages
from ponder.research.index import Index


class WebSource:
    name = "web"

    def __init__(self, endpoint: str, pages: int = 3, timeout: float = 15.0) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            from ponder.errors import UserError

            raise UserError(
                f"--web {endpoint!r}: give the search endpoint as http(s)://HOST[:PORT]/PATH"
            )
        if parts.path in ("", "/"):
            parts = parts._replace(path="/search")  # SearXNG's
        self.endpoint, self.pages = urlunsplit(parts), pages
        headers = {"User-Agent": "ponder-research"}
        self._client = need("httpx").AsyncClient(
            timeout=timeout, follow_redirects=True, headers=headers
        )
        self.errors: list[str] = []

    async def _page(self, url: str) -> Document | None:
        try:
            r = await self._client.get(url)
            r.raise_for_status()
        except Exception as e:  # the network's failure, not ours: skip the page
            self.errors.append(f"{url}: {type(e).__name__}: {e}"[:200])
            return None
        kind = r.headers.get("content-type", "")
        text = (
            r.text if kind.startswith("text/plain") else await asyncio.to_thread(html_text, r.text)
        )
        return Document(url, text) if text.strip() else None

    async def search(self, query: str, k: int) -> list[Passage]:
        try:
            r = await self._client.get(self.endpoint, params={"q": query, "format": "json"})
            r.raise_for_status()
            results = r.json().get("results", [])
        except Exception as e:
            self.errors.append(f"search {query!r}: {type(e).__name__}: {e}"[:200])
            return []
        urls = list(
            dict.fromkeys(x["url"] for x in results if isinstance(x, dict) and x.get("url"))
        )
        docs = [d for d in await asyncio.gather(*(self._page(u) for u in urls[: self.pages])) if d]
        found = [p for d in docs for p in passages(d)]
        if not found:
            return []
        return [p for p, _ in Index.build(found).search(query, k)]

    async def aclose(self) -> None:
        await self._client.aclose()

"""Load a benchmark split from the Hugging Face Hub with ``datasets`` (the ``ponder[hub]`` extra).

Offline, ``datasets`` retries its first request with backoff for about 23 seconds before it gives up
(measured with datasets 5.2 / huggingface_hub 2.4). So we first open one TCP connection to the Hub
endpoint (3 s timeout) and fail in one line when that fails. The probe is skipped when the user set
``HF_HUB_OFFLINE`` (``datasets`` then reads its cache at once) or routes HTTPS through a proxy (a
direct connection proves nothing there); in those cases ``datasets``' own errors are translated.
"""

from __future__ import annotations

import socket
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ponder.problems.errors import ProblemSetError, one_line

PROBE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class HubSource:
    """Where a set lives on the Hub: ``load_dataset(path, config, split=split)``. ``split`` None:
    ``test`` when the dataset has one, else its only split. A ``path`` that exists on disk (a
    folder of data files) is read by the same call, without the Hub."""

    path: str
    split: str | None
    config: str | None = None

    def __str__(self) -> str:
        config = f" config {self.config}" if self.config else ""
        return f"{self.path}{config} split {self.split or '(default)'}"

    @property
    def local(self) -> bool:
        return Path(self.path).expanduser().exists()


def hub_endpoint() -> str:
    """The Hub URL ``datasets`` will use (honours ``HF_ENDPOINT``)."""
    try:
        from huggingface_hub import constants

        return constants.ENDPOINT
    except Exception:  # an old or odd huggingface_hub: fall back to the public Hub
        return "https://huggingface.co"


def _offline_mode() -> bool:
    try:
        from huggingface_hub import constants

        return bool(getattr(constants, "HF_HUB_OFFLINE", False))
    except Exception:
        return False


def unreachable_reason(endpoint: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Why ``endpoint`` cannot be reached directly, or None when a TCP connection opens."""
    url = urlsplit(endpoint)
    host = url.hostname or ""
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        return f"{host}: {one_line(e.strerror or e)}"
    return None


def _behind_proxy(endpoint: str) -> bool:
    proxies = urllib.request.getproxies()
    host = urlsplit(endpoint).hostname or ""
    has_proxy = any(k in proxies for k in ("https", "http", "all"))
    return has_proxy and not urllib.request.proxy_bypass(host)


def load_hub_rows(source: HubSource) -> list[dict[str, Any]]:
    """All rows of ``source`` as plain dicts; every failure is a one-line ProblemSetError."""
    hint = f"pass --data FILE with a local JSONL copy of {source.path}"
    try:
        import datasets
    except ImportError:
        raise ProblemSetError(
            f"loading {source.path} from the Hub needs the `datasets` package: "
            f"pip install 'ponder[hub]', or {hint}"
        ) from None
    endpoint = hub_endpoint()
    if not source.local and not _offline_mode() and not _behind_proxy(endpoint):
        reason = unreachable_reason(endpoint)
        if reason:
            raise ProblemSetError(
                f"cannot reach the Hugging Face Hub ({reason}); {hint} "
                "(or set HF_HUB_OFFLINE=1 to use a copy in the datasets cache)"
            )
    try:
        ds = datasets.load_dataset(source.path, source.config, split=source.split)
    except ConnectionError as e:  # datasets' "Couldn't reach ... on the Hub" (also when offline)
        raise ProblemSetError(
            f"cannot load {source} from the Hub ({one_line(e)}); {hint}"
        ) from None
    except Exception as e:  # unknown id, config or split; a corrupt cache; auth
        raise ProblemSetError(
            f"cannot load {source} from the Hub: {type(e).__name__}: {one_line(e, 200)}; {hint}"
        ) from None
    if source.split is None:
        ds = _default_split(ds, source)
    return [dict(row) for row in ds]


def _default_split(splits: Any, source: HubSource) -> Any:
    """``test`` when there is one, else the only split; several and no test: the user picks."""
    names = list(splits)
    if "test" in names or len(names) == 1:
        return splits["test" if "test" in names else names[0]]
    raise ProblemSetError(
        f"{source.path} has splits {', '.join(names)} and none is 'test'; "
        f"name one: hf:{source.path}{':' + source.config if source.config else ''}@{names[0]}"
    )

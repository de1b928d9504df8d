"""The digest's narrator: an OpenAI-compatible ``/v1/chat/completions`` endpoint the fund runs.

The digest is deliberately not anonymised (real investor names and substance), so the endpoint
is the fund's own; URL, model and key are passed in (from settings and secrets by the wiring).
:meth:`ChatNarrator.narrate` never raises: not configured, unreachable, slower than the
timeout, a non-200 answer or one without a usable ``choices[0].message.content`` all give
``None``, and the digest uses its deterministic paragraph for that user. Failures are logged
by kind only (never the key, never the response body, which may echo the prompt).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import requests

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_BYTES = 256 * 1024
CHAT_PATH = "/v1/chat/completions"


def completions_url(base_url: str) -> str:
    """``http://host:port`` or ``.../v1`` or the full path: the completions URL."""
    url = base_url.strip().rstrip("/")
    if url.endswith(CHAT_PATH):
        return url
    if url.endswith("/v1"):
        return url + "/chat/completions"
    return url + CHAT_PATH


class ChatNarrator:
    """One chat-completions call per paragraph, under a strict timeout."""

    def __init__(
        self,
        url: str | None,
        model: str | None,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_tokens: int = 300,
        session: requests.Session | None = None,
    ) -> None:
        self.url = completions_url(url) if url and url.strip() else ""
        self.model = (model or "").strip()
        self._api_key = api_key or ""
        self.timeout = timeout
        self.max_tokens = max_tokens
        self._session = session or requests.Session()

    @property
    def configured(self) -> bool:
        scheme = urlsplit(self.url).scheme if self.url else ""
        return bool(self.url and self.model and scheme in {"http", "https"})

    def narrate(self, system: str, prompt: str) -> str | None:
        """The model's paragraph, or None on any failure (see the module docstring)."""
        if not self.configured:
            return None
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        payload = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": prompt},
            ],
            "temperature": 0.2,
            "max_tokens": self.max_tokens,
            "stream": False,
        }
        started = time.monotonic()
        try:
            with self._session.post(
                self.url,
                json=payload,
                headers=headers,
                timeout=(self.timeout, self.timeout),
                allow_redirects=False,
                stream=True,
            ) as response:
                if response.status_code != 200:
                    return self._fail("http_status", status=response.status_code)
                body = self._read_bounded(response, started)
        except requests.Timeout:
            return self._fail("timeout")
        except (requests.RequestException, OSError):
            return self._fail("unreachable")
        except _Slow:
            return self._fail("timeout")
        except _TooLarge:
            return self._fail("garbage", detail="response too large")
        return self._content(body)

    def _read_bounded(self, response: requests.Response, started: float) -> bytes:
        # Each socket read is bounded by the timeout; the whole answer by the same deadline, so
        # a server trickling bytes cannot hold the digest longer than one timeout.
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(chunk_size=8192):
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise _TooLarge
            chunks.append(chunk)
            if time.monotonic() - started > self.timeout:
                raise _Slow
        if time.monotonic() - started > self.timeout:
            raise _Slow
        return b"".join(chunks)

    def _content(self, body: bytes) -> str | None:
        try:
            data: Any = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return self._fail("garbage", detail="not JSON")
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or not choices:
            return self._fail("garbage", detail="no choices")
        first = choices[0]
        message = first.get("message") if isinstance(first, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str) or not content.strip():
            return self._fail("garbage", detail="no content")
        return content.strip()

    def _fail(self, kind: str, **fields: Any) -> str | None:
        logger.warning(
            "digest narrator gave no paragraph; using the count-only text",
            extra={"fields": {"event": "narrator_failed", "kind": kind, **fields}},
        )
        return None


class _Slow(Exception):
    pass


class _TooLarge(Exception):
    pass

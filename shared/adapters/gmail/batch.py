"""A batch of Gmail ``messages.get`` calls on the wire: the multipart request and its reply.

Written and read here rather than by ``googleapiclient.http.BatchHttpRequest``: see
``BatchWire``. Pure text and bytes; the HTTP call itself is the client's (``api.py``).
"""

from __future__ import annotations

import email.message
import re
import urllib.parse
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ID_SLOT = "ID-SLOT-0f3a9c"  # stands for the message id in the part template (URL-safe)
_PART_ID = re.compile(rb"^content-id:[ \t]*<([^>]*)>", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class BatchWire:
    """Writes a batch of ``messages.get`` parts and reads Gmail's multipart reply.

    ``BatchHttpRequest`` builds every part as an ``email`` MIME message, flattens the whole with
    the ``email`` generator, makes each part's request through discovery (``createMethod``), and
    reads the reply with ``FeedParser``: together more than a quarter of capture's CPU per
    message (bench/capture.py, docs/capture.md). A part is an HTTP request line, headers and a
    blank line; the reply's parts are status lines, headers and JSON. So the part is made once
    per format by the library (its URL, query and headers: ``template``), the id is put into
    it per message, and the reply is split on its boundary. Parts carry the token as the
    library's do (Google applies the outer request's headers to parts too).
    """

    fmt: str
    method: str
    target: str  # path and query, with ID_SLOT where the id goes
    host: str
    headers: tuple[tuple[str, str], ...]

    @classmethod
    def from_request(cls, request: Any, fmt: str) -> BatchWire:
        parsed = urllib.parse.urlsplit(request.uri)
        target = urllib.parse.urlunsplit(("", "", parsed.path, parsed.query, ""))
        headers = dict(request.headers)
        headers.pop("content-type", None)
        return cls(fmt, request.method, target, parsed.netloc, tuple(headers.items()))

    def part(self, message_id: str, auth: Mapping[str, str]) -> str:
        """One part's HTTP request, as ``BatchHttpRequest._serialize_request`` writes it."""
        target = self.target.replace(ID_SLOT, urllib.parse.quote(message_id, safe=""))
        lines = [
            f"{self.method} {target} HTTP/1.1",
            "Content-Type: application/json",
            "MIME-Version: 1.0",
            *(f"{name}: {value}" for name, value in self.headers),
            *(f"{name}: {value}" for name, value in auth.items()),
            f"Host: {self.host}",
        ]
        return "\n".join(lines) + "\n\n"

    def request(
        self, ids: Sequence[str], auth: Mapping[str, str]
    ) -> tuple[str, str, dict[str, str]]:
        """(body, content type, part number -> id) of one batch POST."""
        boundary = "===============" + uuid.uuid4().hex + "=="
        base = uuid.uuid4().hex
        order: dict[str, str] = {}
        chunks: list[str] = []
        for number, message_id in enumerate(ids):
            key = f"{base} + {number}"
            order[key] = message_id
            chunks.append(
                f"--{boundary}\r\nContent-Type: application/http\r\n"
                "Content-Transfer-Encoding: binary\r\nMIME-Version: 1.0\r\n"
                f"Content-ID: <{key}>\r\n\r\n{self.part(message_id, auth)}\r\n"
            )
        body = "".join(chunks) + f"--{boundary}--\r\n"
        return body, f'multipart/mixed; boundary="{boundary}"', order

    @staticmethod
    def parts(
        content_type: str, content: bytes
    ) -> Iterator[tuple[str, int, dict[str, str], bytes]]:
        """(part key, status, headers, body) of each part of a multipart reply; a part that is
        not an HTTP response is skipped (its id is then reported missing)."""
        boundary = _boundary(content_type)
        if not boundary:
            return
        delimiter = b"--" + boundary.encode("latin-1")
        segments = content.split(delimiter)
        for segment in segments[1:]:
            if segment.startswith(b"--"):
                break  # the close delimiter: the epilogue follows
            head, body = _split_head(segment)
            found = _PART_ID.search(head)
            if found is None:
                continue
            content_id = found.group(1).decode("latin-1").strip()
            if content_id.startswith("response-"):
                content_id = content_id[len("response-") :]
            status_head, payload = _split_head(body.lstrip(b"\r\n"))
            lines = status_head.decode("latin-1").splitlines()
            if not lines:
                continue
            status_line = lines[0].split(" ", 2)
            if len(status_line) < 2 or not status_line[1].isdigit():
                continue
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            if payload.endswith(b"\r\n"):
                payload = payload[:-2]
            elif payload.endswith(b"\n"):
                payload = payload[:-1]
            yield content_id, int(status_line[1]), headers, payload


def _boundary(content_type: str) -> str:
    """The ``boundary`` parameter of a ``multipart/mixed`` content type, or ''."""
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_type() != "multipart/mixed":
        return ""
    boundary = message.get_param("boundary")
    return boundary if isinstance(boundary, str) else ""


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    """Headers and body of a MIME or HTTP block, at the first blank line (CRLF or LF)."""
    crlf = data.find(b"\r\n\r\n")
    lf = data.find(b"\n\n")
    if crlf >= 0 and (lf < 0 or crlf < lf):
        return data[:crlf], data[crlf + 4 :]
    if lf >= 0:
        return data[:lf], data[lf + 2 :]
    return data, b""

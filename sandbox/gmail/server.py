"""The Gmail simulator's HTTP face: REST paths, the batch endpoint, OAuth token, IAM signing.

Every Gmail call, direct or a batch part, becomes one :meth:`GmailSandbox.execute`. The batch
answer is built the way google-api-python-client's ``BatchHttpRequest._execute`` parses it: a
``multipart/mixed`` body whose parts are ``application/http`` responses (status line, headers,
a CRLF blank line, the JSON body) with ``Content-ID: <response-...>`` mirroring each request part.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import socket
import threading
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from sandbox.gmail import errors
from sandbox.gmail.auth import TokenError
from sandbox.gmail.errors import GmailError
from sandbox.gmail.sandbox import MAX_BATCH_PARTS, DropConnection, GmailSandbox, Reply
from sandbox.issuer import CertsApp
from sandbox.loopback import SHUTDOWN_POLL_S

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

BATCH_PATHS = {"/batch/gmail/v1", "/batch"}
_USER = r"^/gmail/v1/users/(?P<user>[^/]+)"
_UPLOAD = r"^/upload/gmail/v1/users/(?P<user>[^/]+)"
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(_USER + r"/profile$"), "getProfile"),
    ("GET", re.compile(_USER + r"/messages$"), "messages.list"),
    ("POST", re.compile(_USER + r"/messages/send$"), "messages.send"),
    ("GET", re.compile(_USER + r"/messages/(?P<id>[^/]+)$"), "messages.get"),
    ("GET", re.compile(_USER + r"/threads/(?P<id>[^/]+)$"), "threads.get"),
    ("GET", re.compile(_USER + r"/history$"), "history.list"),
    ("POST", re.compile(_USER + r"/watch$"), "watch"),
    ("POST", re.compile(_USER + r"/stop$"), "stop"),
    ("POST", re.compile(_USER + r"/drafts$"), "drafts.create"),
    # Never called by the product: recorded and refused with 405 (the send guard checks).
    ("POST", re.compile(_USER + r"/drafts/send$"), "drafts.send"),
    ("POST", re.compile(_USER + r"/messages/import$"), "messages.import"),
    ("POST", re.compile(_USER + r"/messages$"), "messages.insert"),
    ("POST", re.compile(_UPLOAD + r"/drafts/send$"), "drafts.send"),
    ("POST", re.compile(_UPLOAD + r"/messages/import$"), "messages.import"),
    ("POST", re.compile(_UPLOAD + r"/messages$"), "messages.insert"),
]
_IAM = re.compile(
    r"^/v1/projects/[^/]+/serviceAccounts/(?P<email>[^/:]+):(?P<rpc>signJwt|signBlob)$"
)
JSON_TYPE = "application/json; charset=UTF-8"


def route(http_method: str, path: str) -> tuple[str, dict[str, str]] | None:
    """(Gmail method name, path arguments) for a REST path, or None."""
    for method, pattern, name in _ROUTES:
        match = pattern.match(path)
        if match and method == http_method.upper():
            args = {key: urllib.parse.unquote(value) for key, value in match.groupdict().items()}
            return name, args
    return None


def _json_body(data: bytes) -> dict[str, Any]:
    if not data.strip():
        return {}
    try:
        value = json.loads(data)
    except ValueError:
        raise errors.bad_request("Invalid JSON payload received.") from None
    if not isinstance(value, dict):
        raise errors.bad_request("Invalid JSON payload received.")
    return value


@dataclass(frozen=True)
class _Part:
    content_id: str | None
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lowercased names
    body: bytes


def _parse_part(part: Message) -> _Part:
    payload = part.get_payload(decode=False)
    text = payload if isinstance(payload, str) else ""
    text = text.lstrip("\r\n")
    head, _, body = text.replace("\r\n", "\n").partition("\n\n")
    lines = head.split("\n")
    try:
        method, target, _version = lines[0].split(" ", 2)
    except ValueError:
        method, target = "GET", "/"
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    parsed = urllib.parse.urlsplit(target)
    return _Part(
        content_id=part.get("Content-ID"),
        method=method,
        path=parsed.path,
        query=urllib.parse.parse_qs(parsed.query, keep_blank_values=True),
        headers=headers,
        body=body.encode("utf-8"),
    )


class GmailApp:
    """WSGI app for one :class:`GmailSandbox`."""

    def __init__(self, sandbox: GmailSandbox) -> None:
        self.sandbox = sandbox

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self._dispatch(request)
        except DropConnection:
            sock = environ.get("werkzeug.socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            raise ConnectionAbortedError("injected fault: connection dropped") from None
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        path = request.path
        if path == "/token" and request.method == "POST":
            return self._token(request)
        iam = _IAM.match(path)
        if iam and request.method == "POST":
            return self._iam(request, iam.group("email"), iam.group("rpc"))
        if path == CertsApp.path:
            issuer = self.sandbox.push_issuer
            if issuer is not None:
                return Response(json.dumps(issuer.certs_json()), content_type=JSON_TYPE)
        if path in BATCH_PATHS and request.method == "POST":
            return self._batch(request)
        found = route(request.method, path)
        if found is None:
            return _reply(Reply(404, errors.not_found().body()))
        name, args = found
        try:
            body = _json_body(request.get_data()) if request.method == "POST" else {}
        except GmailError as error:
            return _reply(Reply(error.code, error.body(), error.headers))
        reply = self.sandbox.execute(
            name,
            request.headers.get("Authorization"),
            args.pop("user"),
            args,
            _query(request.query_string.decode("latin-1")),
            body,
        )
        return _reply(reply)

    def _token(self, request: Request) -> Response:
        try:
            answer = self.sandbox.token_exchange(request.form.to_dict())
        except TokenError as error:
            return Response(json.dumps(error.body()), status=error.status, content_type=JSON_TYPE)
        return Response(
            json.dumps(answer), content_type=JSON_TYPE, headers={"Cache-Control": "no-store"}
        )

    def _iam(self, request: Request, email: str, rpc: str) -> Response:
        try:
            body = json.loads(request.get_data() or b"{}")
            if not isinstance(body, dict):
                raise TokenError(400, "invalid_argument", "body must be a JSON object")
            answer = self.sandbox.iam_sign(
                urllib.parse.unquote(email), rpc, body, request.headers.get("Authorization")
            )
        except ValueError:
            error_body = {
                "error": {"code": 400, "message": "Invalid JSON", "status": "INVALID_ARGUMENT"}
            }
            return Response(json.dumps(error_body), status=400, content_type=JSON_TYPE)
        except TokenError as error:
            status_name = {401: "UNAUTHENTICATED", 404: "NOT_FOUND"}.get(
                error.status, "INVALID_ARGUMENT"
            )
            error_body = {
                "error": {"code": error.status, "message": error.description, "status": status_name}
            }
            return Response(json.dumps(error_body), status=error.status, content_type=JSON_TYPE)
        return Response(json.dumps(answer), content_type=JSON_TYPE)

    def _batch(self, request: Request) -> Response:
        sandbox = self.sandbox
        outer_auth = request.headers.get("Authorization")
        outer_token = sandbox.authenticate(outer_auth)
        outer_user = outer_token.subject if outer_token is not None else None
        try:
            sandbox.apply_fault(sandbox.take_fault("batch", outer_user))
        except GmailError as error:
            return _reply(Reply(error.code, error.body(), error.headers))
        content_type = request.headers.get("Content-Type", "")
        if not content_type.lower().startswith("multipart/mixed"):
            return _reply(Reply(400, errors.bad_request("Batch must be multipart/mixed").body()))
        message = BytesParser(policy=compat32).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + request.get_data()
        )
        payload = message.get_payload()
        parts = (
            [_parse_part(p) for p in payload if isinstance(p, Message)]
            if isinstance(payload, list)
            else []
        )
        if not parts:
            return _reply(Reply(400, errors.bad_request("Empty batch request").body()))
        if len(parts) > MAX_BATCH_PARTS:
            too_many = errors.bad_request(
                f"Too many requests in batch. Max allowed is {MAX_BATCH_PARTS}.", "badRequest"
            )
            return _reply(Reply(400, too_many.body()))
        # Gmail runs a batch's parts at once: each takes a concurrency slot up front.
        plans: list[tuple[_Part, str | None, str | None, bool]] = []
        held: list[str] = []
        for part in parts:
            authorization = part.headers.get("authorization", outer_auth)
            found = route(part.method, part.path)
            user = found[1].get("user", "") if found else ""
            address = sandbox.resolve_user(sandbox.authenticate(authorization), user)
            reserved = bool(address) and sandbox.try_acquire(address or "")
            if reserved and address:
                held.append(address)
            plans.append((part, authorization, address, reserved))
        try:
            replies = [self._run_part(part, auth, reserved) for part, auth, _, reserved in plans]
        finally:
            for address in held:
                sandbox.release(address)
        boundary = "batch_" + secrets.token_hex(12)
        chunks = []
        for part, reply in zip(parts, replies, strict=True):
            content_id = (part.content_id or "<item>").strip()
            response_id = (
                "<response-" + content_id[1:] if content_id.startswith("<") else content_id
            )
            lines = [
                f"--{boundary}",
                "Content-Type: application/http",
                f"Content-ID: {response_id}",
                "",
                f"HTTP/1.1 {reply.status} {HTTPStatus(reply.status).phrase}",
            ]
            lines += [f"{name}: {value}" for name, value in reply.headers.items()]
            if reply.body is None:
                lines += ["Content-Length: 0", "", ""]
            else:
                data = json.dumps(reply.body, indent=2)
                lines += [f"Content-Type: {JSON_TYPE}", "", data]
            chunks.append("\r\n".join(lines))
        body = "\r\n".join(chunks) + f"\r\n--{boundary}--\r\n"
        return Response(body, status=200, content_type=f"multipart/mixed; boundary={boundary}")

    def _run_part(self, part: _Part, authorization: str | None, reserved: bool) -> Reply:
        found = route(part.method, part.path)
        if found is None:
            return Reply(404, errors.not_found().body())
        name, args = found
        try:
            body = _json_body(part.body) if part.method.upper() == "POST" else {}
        except GmailError as error:
            return Reply(error.code, error.body(), error.headers)
        user = args.pop("user")
        return self.sandbox.execute(
            name, authorization, user, args, part.query, body, reserved=reserved
        )


def _query(query_string: str) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(query_string, keep_blank_values=True)


def _reply(reply: Reply) -> Response:
    headers = dict(reply.headers)
    if reply.body is None:
        return Response(b"", status=reply.status, headers=headers)
    return Response(
        json.dumps(reply.body, indent=2),
        status=reply.status,
        content_type=JSON_TYPE,
        headers=headers,
    )


class _QuietRequestHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return


@dataclass(frozen=True)
class RunningGmailSandbox:
    """A served sandbox: the URLs clients need."""

    sandbox: GmailSandbox
    base_url: str

    @property
    def token_uri(self) -> str:
        return self.base_url + "/token"

    @property
    def batch_uri(self) -> str:
        """For ``BatchHttpRequest(batch_uri=...)``: the client's default ignores the endpoint."""
        return self.base_url + "/batch/gmail/v1"

    @property
    def client_options(self) -> Mapping[str, str]:
        return {"api_endpoint": self.base_url}

    @property
    def certs_url(self) -> str:
        """The push issuer's certs (Google's v1 format), once a push target is set."""
        return self.base_url + CertsApp.path


@contextlib.contextmanager
def serve_gmail_sandbox(
    sandbox: GmailSandbox, host: str = "127.0.0.1", port: int = 0
) -> Iterator[RunningGmailSandbox]:
    """Serve the sandbox on a loopback port (0: the OS picks) from a threaded werkzeug server."""
    server = make_server(
        host, port, GmailApp(sandbox), threaded=True, request_handler=_QuietRequestHandler
    )
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": SHUTDOWN_POLL_S},
        name=f"gmail-sandbox:{server.port}",
        daemon=True,
    )
    thread.start()
    url_host = f"[{host}]" if ":" in host else host
    base_url = f"http://{url_host}:{server.port}"
    sandbox.base_url = base_url
    try:
        yield RunningGmailSandbox(sandbox=sandbox, base_url=base_url)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        sandbox.close()
        sandbox.base_url = None

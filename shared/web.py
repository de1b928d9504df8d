"""The thin HTTP glue every function uses: CORS, the bearer token, roles, and errors as JSON.

Why one module: every entry point is reached with the platform's invoker check disabled, so each
must authenticate in code (ARCHITECTURE.md, "TokenVerifier"). Doing it here, once, means no
function can forget a step or answer an error differently:

1. ``OPTIONS`` is a CORS preflight: answered without a token, for the origins in
   ``settings.cors_origins`` only (a foreign origin gets a 403 and no CORS headers).
2. Every other request needs ``Authorization: Bearer <Google ID token>``, verified for this
   function's audience by the verifier (401/403), then the caller's role must be one the route
   admits (403).
3. ``AppError``s become ``{"error": code, "reason": message}`` with the status of their kind
   (:data:`STATUS_BY_KIND`, the one table from error kinds to statuses: services raise errors
   that say what went wrong, never which status to answer); anything else is a 500
   ``internal error``, logged with its stack, with the token scrubbed from the log.
4. Bodies are read in one place (:func:`read_body`, :func:`read_json`): at most
   :data:`MAX_BODY_BYTES` (413, from ``Content-Length`` or while reading a streamed body), and
   JSON parsed as untrusted (nesting bounded, lone surrogates refused: 400). A route added to a
   :class:`Router` gets this, and its models' own bounds, without doing anything.

Functions stay thin (functions-framework passes a ``flask.Request``)::

    @functions_framework.http
    @guarded("gmail_push", {ServiceRole.PUBSUB_PUSH}, verifier=wiring.verifier)
    def gmail_push(request: flask.Request, caller: Caller) -> ResponseReturnValue: ...

    api = Router("admin_api", verifier=wiring.verifier)

    @api.route("POST", "/proposals/<proposal_id>/approve", roles=ADMINS)
    def approve(request: flask.Request, caller: Caller, proposal_id: str) -> ResponseReturnValue:
        ...

    @functions_framework.http
    def admin_api(request: flask.Request) -> flask.Response:
        return api(request)

The verifier comes from a zero-argument callable (``wiring.verifier``), called per request, so
importing this module builds nothing and imports no Google client library.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import threading
import traceback
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import flask
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, RequestRedirect, Rule

from shared.domain.models import Caller, Role, ServiceRole
from shared.domain.untrusted_json import check_json_value, parse_untrusted_json
from shared.errors import (
    AppError,
    BadRequestError,
    ErrorKind,
    ForbiddenError,
    NotFoundError,
    TooLargeError,
    UnauthenticatedError,
)

if TYPE_CHECKING:
    # Annotations only: every entry point imports this module at cold start; importing the
    # ports package there would load all twenty port modules.
    from shared.ports import TokenVerifier

logger = logging.getLogger(__name__)

AnyRole = Role | ServiceRole
VerifierFactory = Callable[[], "TokenVerifier"]
# A handler is called as handler(request, caller, **path_params), like a Flask view.
Handler = Callable[..., ResponseReturnValue]
# A router's handler may also return a pydantic model: sent as JSON with the route's status
# (or a Reply: the model with another status the route declares).
RouteHandler = Callable[..., "ResponseReturnValue | BaseModel | Reply"]
HttpFunction = Callable[[flask.Request], flask.Response]

ADMINS: frozenset[AnyRole] = frozenset({Role.ADMIN})
PEOPLE: frozenset[AnyRole] = frozenset({Role.ADMIN, Role.MEMBER})

# The largest body any route or function reads (413 beyond it, before parsing): above any JSON
# request the API's models admit (a 500-record batch is well under it) and the CSV import's
# own 2 MiB, far below Cloud Functions' 32 MiB.
MAX_BODY_BYTES = 4 * 1024 * 1024
# A field name quoted in a 400 is cut to this (the name is the caller's, and may be huge).
_MAX_QUOTED_NAME = 100
# And a validator's message (which may quote the value) to this.
_MAX_QUOTED_MESSAGE = 300

CORS_ALLOWED_HEADERS = "Authorization, Content-Type"
CORS_MAX_AGE_SECONDS = 3600
_REDACTED = "[redacted]"


# Every kind of error and the status it is answered with: the only place statuses are chosen.
STATUS_BY_KIND: Mapping[ErrorKind, int] = {
    ErrorKind.BAD_INPUT: 400,
    ErrorKind.UNAUTHENTICATED: 401,
    ErrorKind.FORBIDDEN: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.METHOD_NOT_ALLOWED: 405,
    ErrorKind.CONFLICT: 409,
    ErrorKind.TOO_LARGE: 413,
    ErrorKind.UNSUPPORTED_MEDIA: 415,
    ErrorKind.INTERNAL: 500,
    ErrorKind.CONFIGURATION: 500,
    ErrorKind.UPSTREAM: 502,
    ErrorKind.UNAVAILABLE: 503,
}


def status_for(error: AppError) -> int:
    """The HTTP status an error is answered with, from its kind."""
    return STATUS_BY_KIND[error.kind]


class MethodNotAllowedError(AppError):
    """The path exists but not for this method."""

    kind = ErrorKind.METHOD_NOT_ALLOWED
    code = "method_not_allowed"


def bearer_token(request: flask.Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header; None when there is no header at all.

    Any other scheme, or a header with no token or extra parts, is a 401 (RFC 6750; the scheme
    name is case-insensitive).
    """
    header = request.headers.get("Authorization")
    if header is None:
        return None
    parts = header.split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        raise UnauthenticatedError("authorization header must be 'Bearer <token>'")
    return parts[1]


def json_response(body: Any, status: int = 200) -> flask.Response:
    """A JSON response that needs no Flask app context (errors may happen outside one)."""
    return flask.Response(json.dumps(body), status=status, mimetype="application/json")


def error_response(error: AppError) -> flask.Response:
    """An AppError as the API answers it: ``{"error": code, "reason": message, ...}``."""
    status = status_for(error)
    response = json_response(error.to_json(), status)
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def guarded(
    function_name: str,
    roles: Iterable[AnyRole],
    *,
    verifier: VerifierFactory,
    methods: Iterable[str] = ("POST",),
) -> Callable[[Handler], HttpFunction]:
    """Decorate a single-purpose HTTP function: ``handler(request, caller)`` runs only for a
    verified caller whose role is in ``roles``, and only for ``methods`` (405 otherwise)."""
    admitted = frozenset(roles)
    allowed = frozenset(method.upper() for method in methods)
    endpoint = _Endpoint(function_name, verifier, allowed)

    def decorate(handler: Handler) -> HttpFunction:
        def dispatch(request: flask.Request, caller: Caller) -> ResponseReturnValue:
            if request.method.upper() not in allowed:
                raise MethodNotAllowedError("method not allowed", allowed=sorted(allowed))
            _admit(caller, admitted)
            return handler(request, caller)

        @functools.wraps(handler)
        def http_function(request: flask.Request) -> flask.Response:
            return endpoint.handle(request, dispatch)

        return http_function

    return decorate


@dataclass(frozen=True)
class SplitBeyondMax:
    """Marks a list field whose length is the request's size (``Annotated[list[X],
    SplitBeyondMax()]`` with ``Field(max_length=...)``): more items than its ``max_length`` is
    a 413 (split the request), not a 400, on a route that declares 413."""


@dataclass(frozen=True)
class Route:
    """One route and what the OpenAPI document says about it.

    ``query`` and ``body`` are pydantic models: the router validates the query string and the
    JSON body against them (400 naming each bad field) and passes the results to the handler as
    ``query=`` and ``body=``. A handler may return a pydantic model, sent as JSON with
    ``status``; ``response`` names that model's class for the document. ``errors`` lists the
    statuses the route can answer besides the ones every route can (400, 401, 403, 404, 405).
    ``also`` lists other success statuses the route answers with the same reply model (the
    handler picks one by returning a :class:`Reply`), e.g. 202 when a write queued a job.
    ``raw_body`` is the media type of a body the handler reads itself (``text/csv``): the
    document describes it as a string. ``raw_response`` likewise for a reply the handler
    writes itself (a streamed ``text/csv`` export).
    """

    method: str
    path: str
    roles: frozenset[AnyRole]
    handler: RouteHandler
    summary: str = ""
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    tag: str = ""
    also: tuple[int, ...] = ()
    raw_body: str = ""
    raw_response: str = ""


@dataclass(frozen=True)
class Reply:
    """A handler's reply model with one of its route's other success statuses (``also``)."""

    body: BaseModel
    status: int


class Router:
    """One HTTP function serving several ``(method, path)`` routes, each naming its roles.

    Paths use werkzeug's rule syntax (``/proposals/<proposal_id>``); captured parts are passed to
    the handler as keyword arguments. The token is verified before routing, so an unauthenticated
    caller learns nothing about which paths exist: it gets 401 everywhere. An authenticated
    caller gets 404 for an unknown path and 405 for a known path with another method.

    ``modules`` register their routes on this router when imported; they are imported on the
    first request (or the first look at ``routes``), not with the function's module, so that a
    cold start of every other function does not pay for the admin API's models and handlers.
    """

    def __init__(
        self,
        function_name: str,
        *,
        verifier: VerifierFactory,
        modules: Sequence[str] = (),
    ) -> None:
        self.function_name = function_name
        self._routes: dict[str, Route] = {}
        self._map = Map(strict_slashes=False, merge_slashes=False)
        self._endpoint = _Endpoint(function_name, verifier, self._methods)
        self._modules = tuple(modules)
        self._loaded = not self._modules
        self._load_lock = threading.Lock()

    def route(
        self,
        method: str,
        path: str,
        *,
        roles: Iterable[AnyRole],
        summary: str = "",
        query: type[BaseModel] | None = None,
        body: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        errors: Iterable[int] = (),
        tag: str = "",
        also: Iterable[int] = (),
        raw_body: str = "",
        raw_response: str = "",
    ) -> Callable[[RouteHandler], RouteHandler]:
        """Register a handler for ``method path``, admitting callers whose role is in ``roles``."""

        def register(handler: RouteHandler) -> RouteHandler:
            key = f"{method.upper()} {path}"
            if key in self._routes:
                raise ValueError(f"route registered twice: {key}")
            doc = (handler.__doc__ or "").strip().split("\n\n")[0]
            self._routes[key] = Route(
                method.upper(),
                path,
                frozenset(roles),
                handler,
                summary=summary or " ".join(doc.split()),
                query=query,
                body=body,
                response=response,
                status=status,
                errors=tuple(sorted(set(errors))),
                tag=tag,
                also=tuple(sorted(set(also) - {status})),
                raw_body=raw_body,
                raw_response=raw_response,
            )
            self._map.add(Rule(path, methods=[method.upper()], endpoint=key))
            return handler

        return register

    @property
    def routes(self) -> list[Route]:
        self._load()
        return list(self._routes.values())

    def __call__(self, request: flask.Request) -> flask.Response:
        self._load()
        return self._endpoint.handle(request, self._dispatch)

    def _load(self) -> None:
        if self._loaded:
            return
        with self._load_lock:
            if not self._loaded:
                for module in self._modules:
                    importlib.import_module(module)
                self._loaded = True

    def _methods(self) -> frozenset[str]:
        return frozenset(route.method for route in self._routes.values())

    def _dispatch(self, request: flask.Request, caller: Caller) -> ResponseReturnValue:
        path = _strip_function_prefix(request.path, self.function_name)
        try:
            key, matched = self._map.bind("localhost").match(path, method=request.method)
        except MethodNotAllowed as exc:
            raise MethodNotAllowedError(
                "method not allowed", allowed=sorted(exc.valid_methods or [])
            ) from None
        except (NotFound, RequestRedirect):
            raise NotFoundError("no such route") from None
        params: dict[str, Any] = dict(matched)
        route = self._routes[key]
        _admit(caller, route.roles)
        check_body_size(request)
        if route.query is not None:
            params["query"] = parse_query(request, route.query)
        if route.body is not None:
            params["body"] = parse_body(request, route.body, too_large=413 in route.errors)
        result = route.handler(request, caller, **params)
        if isinstance(result, BaseModel):
            return json_response(result.model_dump(mode="json"), route.status)
        if isinstance(result, Reply):
            if result.status != route.status and result.status not in route.also:
                raise TypeError(f"{key} answered {result.status}, which it does not declare")
            return json_response(result.body.model_dump(mode="json"), result.status)
        return result


M = TypeVar("M", bound=BaseModel)


def check_body_size(request: flask.Request, limit: int = MAX_BODY_BYTES) -> None:
    """413 if the declared ``Content-Length`` is over ``limit`` (nothing read yet)."""
    if request.content_length is not None and request.content_length > limit:
        raise TooLargeError(f"the body is over {limit} bytes", limit=limit)


def read_body(request: flask.Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The raw body, at most ``limit`` bytes: 413 beyond it, whether ``Content-Length`` says so
    or a body streamed without one (chunked) runs past it. Never reads more than limit + 1."""
    check_body_size(request, limit)
    data = request.stream.read(limit + 1)
    if len(data) > limit:
        raise TooLargeError(f"the body is over {limit} bytes", limit=limit)
    return data


def read_json(request: flask.Request) -> Any:
    """The JSON body (None unless the request says it is JSON), read within
    :data:`MAX_BODY_BYTES` (413) and parsed with its nesting bounded and lone surrogates
    refused (400, ``shared.domain.untrusted_json``): the one way any function reads JSON."""
    if not request.is_json:
        return None
    data = read_body(request)
    if not data.strip():
        return None
    return parse_untrusted_json(data)


def parse_body(request: flask.Request, model: type[M], *, too_large: bool = False) -> M:
    """The JSON body as ``model``, or a 400 naming each bad field. With ``too_large``, a list
    marked :class:`SplitBeyondMax` holding more than its maximum is a 413."""
    body = read_json(request)
    if not isinstance(body, dict):
        raise BadRequestError("the body must be a JSON object")
    return _validated(model, body, too_large=too_large)


def parse_query(request: flask.Request, model: type[M]) -> M:
    """The query string as ``model``, or a 400 naming each bad or unknown parameter.

    A parameter given twice is refused rather than silently narrowed to one value.
    """
    values: dict[str, str] = {}
    for name, given in request.args.lists():
        if len(given) != 1:
            raise BadRequestError(f"{name}: give this parameter once")
        values[name] = given[0]
    unknown = sorted(set(values) - set(model.model_fields))
    if unknown:
        raise BadRequestError(
            f"unknown query parameter(s): {', '.join(n[:_MAX_QUOTED_NAME] for n in unknown)}"
        )
    check_json_value(values)  # the same text rules as a body (a lone surrogate is no character)
    return _validated(model, values)


def _validated(model: type[M], data: dict[str, Any], *, too_large: bool = False) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        if too_large and _over_a_split_maximum(model, exc):
            raise TooLargeError(validation_reason(exc) + ": split the request") from None
        raise BadRequestError(validation_reason(exc)) from None


def _over_a_split_maximum(model: type[BaseModel], exc: ValidationError) -> bool:
    """Whether a top-level list marked SplitBeyondMax is what ran over its maximum."""
    for error in exc.errors():
        if error["type"] == "too_long" and len(error["loc"]) == 1:
            field = model.model_fields.get(str(error["loc"][0]))
            if field is not None and any(isinstance(m, SplitBeyondMax) for m in field.metadata):
                return True
    return False


def validation_reason(exc: ValidationError) -> str:
    """Each bad field and why, without echoing the values (they may be long, or secret)."""
    return "; ".join(
        f"{'.'.join(str(part)[:_MAX_QUOTED_NAME] for part in e['loc']) or 'body'}: "
        f"{e['msg'][:_MAX_QUOTED_MESSAGE]}"
        for e in exc.errors()
    )


class _Endpoint:
    """What every HTTP function does around its handler: CORS, auth, error mapping."""

    def __init__(
        self,
        function_name: str,
        verifier: VerifierFactory,
        methods: Collection[str] | Callable[[], Collection[str]],
    ) -> None:
        self.function_name = function_name
        self._verifier = verifier
        self._methods = methods

    def handle(
        self,
        request: flask.Request,
        dispatch: Callable[[flask.Request, Caller], ResponseReturnValue],
    ) -> flask.Response:
        origin = _allowed_origin(request.headers.get("Origin"))
        if request.method.upper() == "OPTIONS":
            return self._preflight(origin)
        token: str | None = None
        try:
            token = bearer_token(request)
            caller = self._verifier().verify(token, audience_for=self.function_name)
            response = _to_response(dispatch(request, caller))
        except AppError as error:
            self._log_refusal(request, error)
            response = _scrubbed(error_response(error), token)
        except HTTPException as exc:
            # Raised by Flask itself, e.g. request.get_json() on a body that is not JSON.
            code = (exc.name or "error").lower().replace(" ", "_")
            response = json_response({"error": code, "reason": exc.description}, exc.code or 400)
        except Exception as exc:
            self._log_crash(request, exc, token)
            response = json_response({"error": "internal", "reason": "internal error"}, 500)
        if origin is not None:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers.add("Vary", "Origin")
        return response

    def _preflight(self, origin: str | None) -> flask.Response:
        if origin is None:
            return json_response(
                {"error": ForbiddenError.code, "reason": "origin not allowed"}, 403
            )
        methods = self._methods() if callable(self._methods) else self._methods
        response = flask.Response(status=204)
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = ", ".join(sorted({*methods, "OPTIONS"}))
        response.headers["Access-Control-Allow-Headers"] = CORS_ALLOWED_HEADERS
        response.headers["Access-Control-Max-Age"] = str(CORS_MAX_AGE_SECONDS)
        response.headers["Vary"] = "Origin"
        return response

    def _log_refusal(self, request: flask.Request, error: AppError) -> None:
        status = status_for(error)
        level = logging.ERROR if status >= 500 else logging.INFO
        if status == 503:
            level = logging.WARNING
        logger.log(
            level,
            "%s %s %s -> %s %s: %s",
            self.function_name,
            request.method,
            request.path,
            status,
            error.code,
            error.message,
        )

    def _log_crash(self, request: flask.Request, exc: Exception, token: str | None) -> None:
        # Formatted here rather than with exc_info so that the text can be scrubbed: an exception
        # message may quote the Authorization header, and tokens must never reach a log.
        text = "".join(traceback.format_exception(exc))
        logger.error(
            "%s %s %s -> 500 unhandled\n%s",
            self.function_name,
            request.method,
            request.path,
            _scrub(text, token, request.headers.get("Authorization")),
        )


def _admit(caller: Caller, roles: frozenset[AnyRole]) -> None:
    if caller.role not in roles:
        raise ForbiddenError("caller's role is not admitted on this route")


def _allowed_origin(origin: str | None) -> str | None:
    """The request's Origin if it is one of ``settings.cors_origins`` (exact match), else None."""
    if not origin:
        return None
    wanted = origin.strip().rstrip("/").lower()
    from shared.config import get_settings  # lazily: pydantic-settings is cold-path weight

    for allowed in get_settings().cors_origins:
        if allowed.strip().rstrip("/").lower() == wanted:
            return origin.strip()
    return None


def _strip_function_prefix(path: str, function_name: str) -> str:
    """``/admin_api/users`` -> ``/users``: a server that mounts functions under ``/<name>``
    (the local one, matching ``settings.function_url``) routes the same as Cloud Run."""
    prefix = f"/{function_name}"
    if path == prefix:
        return "/"
    if path.startswith(prefix + "/"):
        return path[len(prefix) :]
    return path


def _to_response(value: ResponseReturnValue) -> flask.Response:
    if isinstance(value, flask.Response):
        return value
    if flask.has_app_context():
        return flask.current_app.make_response(value)
    if isinstance(value, Mapping | list):
        return json_response(value)
    raise TypeError(f"handler returned {type(value).__name__} outside a Flask app context")


def _scrub(text: str, *secrets: str | None) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    return text


def _scrubbed(response: flask.Response, token: str | None) -> flask.Response:
    """Error bodies are built from messages that must never hold a token; make sure of it."""
    if token:
        body = response.get_data(as_text=True)
        if token in body:
            response.set_data(_scrub(body, token))
    return response

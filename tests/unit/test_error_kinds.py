"""Errors name a kind of failure; the web layer alone turns kinds into HTTP statuses.

Every error class the service defines is found by importing every module under ``shared`` and
``functions``: none may carry a status of its own, and each kind has exactly one status in
``shared.web.STATUS_BY_KIND`` (the statuses the API answered before the table existed).
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import functions
import shared
from shared.errors import AppError, ErrorKind
from shared.web import STATUS_BY_KIND, status_for


def _import_everything() -> None:
    for package in (shared, functions):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            importlib.import_module(module.name)


def _error_classes() -> list[type[AppError]]:
    _import_everything()
    found: list[type[AppError]] = []
    todo: list[type[AppError]] = [AppError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_no_error_class_carries_an_http_status() -> None:
    with_status = [
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in _error_classes()
        if any("status" in vars(klass) for klass in cls.__mro__)
    ]
    assert with_status == []


def test_every_kind_has_one_status_in_the_web_table() -> None:
    assert set(STATUS_BY_KIND) == set(ErrorKind)


@pytest.mark.parametrize(
    ("module", "name", "status"),
    [
        ("shared.errors", "AppError", 500),
        ("shared.errors", "BadRequestError", 400),
        ("shared.errors", "UnauthenticatedError", 401),
        ("shared.errors", "ForbiddenError", 403),
        ("shared.errors", "NotFoundError", 404),
        ("shared.web", "MethodNotAllowedError", 405),
        ("shared.errors", "ConflictError", 409),
        ("shared.errors", "TooLargeError", 413),
        ("functions.admin.crm", "UnsupportedMediaTypeError", 415),
        ("shared.errors", "ConfigurationError", 500),
        ("shared.adapters.gmail.send", "GmailSendError", 502),
        ("shared.adapters.smtp", "SmtpSendError", 502),
        ("shared.adapters.gmail.drafts", "GmailUpstreamError", 502),
        ("shared.services.drafts", "DraftMisthreadedError", 502),
        ("shared.services.mail_transport", "DigestNotSentError", 502),
        ("functions.admin.digest", "DigestTestFailedError", 502),
        ("shared.errors", "RetryableError", 503),
        ("shared.domain.tenancy", "OutsideTeamError", 400),
        ("shared.domain.headers", "UnsafeHeadersError", 409),
    ],
)
def test_each_error_is_answered_with_the_status_it_always_had(
    module: str, name: str, status: int
) -> None:
    cls = getattr(importlib.import_module(module), name)
    assert status_for(cls("why")) == status

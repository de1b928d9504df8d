"""Fixtures for the Gmail sandbox tests: a served sandbox (``env``), or one with options."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest

from tests.support.gmail_sandbox import Env, sandbox_with, serve_env


@pytest.fixture
def env() -> Iterator[Env]:
    yield from serve_env(sandbox_with(seed=7))


@pytest.fixture
def make_env() -> Iterator[Callable[..., Env]]:
    """A sandbox with custom options (clock, rate, concurrency), served like ``env``."""
    stack: list[Generator[Env, None, None]] = []

    def factory(**options: Any) -> Env:
        generator = serve_env(sandbox_with(**options))
        stack.append(generator)
        return next(generator)

    yield factory
    for generator in reversed(stack):
        generator.close()

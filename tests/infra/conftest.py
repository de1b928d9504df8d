"""Fixtures for the deployment tests: the loopback stand-ins and a context pointed at them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra import bundle, spec
from infra.standins import CloudStandIn


@pytest.fixture(scope="session")
def example_site() -> spec.SiteConfig:
    return spec.load_site(spec.EXAMPLE_SITE_FILE)


@pytest.fixture(scope="session")
def source_bundle() -> bundle.Bundle:
    return bundle.collect()


@pytest.fixture
def standin(example_site: spec.SiteConfig) -> Iterator[CloudStandIn]:
    with CloudStandIn(project=example_site.project) as running:
        yield running

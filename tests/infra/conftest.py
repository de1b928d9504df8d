"""Fixtures for the deployment tests: the loopback stand-ins and a context pointed at them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra import bundle, spec
from infra.deploy.clients import Clients
from infra.deploy.engine import Context, read_project_number
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


def make_context(
    standin: CloudStandIn,
    site: spec.SiteConfig,
    source: bundle.Bundle,
    lines: list[str] | None = None,
) -> Context:
    """A deploy context against ``standin``: no waiting between polls, output collected."""
    clients = Clients(endpoint=standin.endpoint)
    number = read_project_number(clients, site.project)
    return Context(
        spec=spec.build_spec(site, project_number=number),
        clients=clients,
        bundle=source,
        poll_interval=0.0,
        num_retries=0,
        out=(lines.append if lines is not None else (lambda _line: None)),
    )

"""A deploy context for the deployment tests, pointed at the loopback Cloud stand-ins."""

from __future__ import annotations

from infra import bundle, spec
from infra.deploy.clients import Clients
from infra.deploy.engine import Context, read_project_number
from infra.standins import CloudStandIn


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

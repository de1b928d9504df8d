"""Loopback stand-ins for the Google Cloud control-plane APIs the deploy tool calls."""

from infra.standins.server import CloudStandIn, RecordedRequest

__all__ = ["CloudStandIn", "RecordedRequest"]

"""The notification source port: Gmail watch notifications pulled from a Pub/Sub subscription.

Gmail can only push to a public HTTPS address; one machine pulls instead. The source hands out
messages with an acknowledgement id, and forgets a message only when it is acknowledged: what is
not acknowledged comes back after the subscription's ack deadline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class PulledMessage:
    """One message as Pub/Sub hands it out: the ack id and the (still encoded) message body."""

    ack_id: str
    message: Mapping[str, Any] = field(default_factory=dict)


class NotificationSource(Protocol):
    def pull(self, max_messages: int) -> Sequence[PulledMessage]: ...

    def acknowledge(self, ack_ids: Sequence[str]) -> None: ...

"""A Gmail API v1 simulator that the real google-api-python-client and google-auth talk to.

See :class:`GmailSandbox` (state and the Python control API) and :func:`serve_gmail_sandbox`
(the HTTP server: Gmail REST paths, ``/batch/gmail/v1``, ``/token``, IAM ``signJwt``/``signBlob``).
"""

from sandbox.gmail.auth import MAIL_SCOPE, SignCall, full_scope
from sandbox.gmail.push import PushDelivery
from sandbox.gmail.sandbox import (
    METHOD_UNITS,
    Draft,
    ForbiddenCall,
    GmailSandbox,
    ManualClock,
    SentMessage,
    Watch,
)
from sandbox.gmail.server import RunningGmailSandbox, serve_gmail_sandbox

__all__ = [
    "MAIL_SCOPE",
    "METHOD_UNITS",
    "Draft",
    "ForbiddenCall",
    "GmailSandbox",
    "ManualClock",
    "PushDelivery",
    "RunningGmailSandbox",
    "SentMessage",
    "SignCall",
    "Watch",
    "full_scope",
    "serve_gmail_sandbox",
]

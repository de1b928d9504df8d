"""Every Cloud Functions entry point, importable by functions-framework.

Deployed once per entry point (``--entry-point=<name>``, same source); the local server mounts
each under ``/<name>``. ``shared.catalog`` names them all, and a test keeps the two lists equal.
Importing this module must stay cheap: no Google client library is imported here (cold start);
adapters are built on first use by ``shared.wiring``.
"""

import os

from functions.admin_api import admin_api
from functions.digest_tick import digest_tick
from functions.gmail_push import gmail_push
from functions.rematch_job import rematch_job
from functions.sync_mailbox import sync_mailbox
from functions.sync_poll import sync_poll
from functions.watch_renew import watch_renew
from shared.logging import configure_logging

# JSON lines on stdout, as Cloud Logging reads them, with secrets redacted. The level is read
# from the environment here rather than through Settings (which validates the same CRM_LOG_LEVEL)
# because pydantic-settings is not worth importing on the cold-start path.
configure_logging(os.environ.get("CRM_LOG_LEVEL", "INFO"))

__all__ = [
    "admin_api",
    "digest_tick",
    "gmail_push",
    "rematch_job",
    "sync_mailbox",
    "sync_poll",
    "watch_renew",
]

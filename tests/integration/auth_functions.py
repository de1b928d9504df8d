"""HTTP functions used only by the auth matrix tests, loaded with functions_framework.create_app.

``auth_api`` is a routed function (like the admin API): an admin-only route, a people route, a
drafts route that also admits the drafting agent, a scheduler route, and routes that raise, to see
errors mapped. ``scheduled_tick`` is a single-purpose function guarded for the scheduler.
"""

from __future__ import annotations

import flask
import functions_framework
from flask.typing import ResponseReturnValue

from shared.domain.models import Caller, Role, ServiceRole
from shared.errors import ConflictError
from shared.web import ADMINS, PEOPLE, Router, bearer_token, guarded
from tests.support import auth as auth_support

api = Router("auth_api", verifier=auth_support.verifier)


def _who(route: str, caller: Caller) -> dict[str, str | None]:
    return {
        "route": route,
        "email": caller.email,
        "role": caller.role.value,
        "user_id": caller.user_id,
    }


@api.route("GET", "/admin/ping", roles=ADMINS)
def admin_ping(request: flask.Request, caller: Caller) -> ResponseReturnValue:
    return _who("admin", caller)


@api.route("GET", "/member/ping", roles=PEOPLE)
def member_ping(request: flask.Request, caller: Caller) -> ResponseReturnValue:
    return _who("member", caller)


@api.route("POST", "/items/<item_id>/echo", roles=PEOPLE)
def echo_item(request: flask.Request, caller: Caller, item_id: str) -> ResponseReturnValue:
    body = request.get_json()
    return {"item_id": item_id, "body": body, **_who("echo", caller)}, 201


@api.route("POST", "/drafts", roles={Role.ADMIN, Role.MEMBER, ServiceRole.DRAFTING_AGENT})
def create_draft(request: flask.Request, caller: Caller) -> ResponseReturnValue:
    return _who("drafts", caller), 201


@api.route("POST", "/jobs/run", roles={ServiceRole.SCHEDULER})
def run_job(request: flask.Request, caller: Caller) -> ResponseReturnValue:
    return _who("job", caller)


@api.route("GET", "/conflict", roles=PEOPLE)
def conflict(request: flask.Request, caller: Caller) -> ResponseReturnValue:
    raise ConflictError("proposal already decided", state="approved")


@api.route("GET", "/boom", roles=PEOPLE)
def boom(request: flask.Request, caller: Caller) -> ResponseReturnValue:
    # A careless bug that quotes the credential: the glue must keep it out of body and log.
    raise RuntimeError(f"handler bug while holding {bearer_token(request)}")


@functions_framework.http
def auth_api(request: flask.Request) -> flask.Response:
    return api(request)


@functions_framework.http
@guarded("scheduled_tick", {ServiceRole.SCHEDULER}, verifier=auth_support.verifier)
def scheduled_tick(request: flask.Request, caller: Caller) -> ResponseReturnValue:
    return _who("tick", caller)

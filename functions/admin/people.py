"""Who am I, and the fund's users (admins only): list, add, read one, change role or activity.

Deactivating a user pauses their mailboxes and drops them from the digest; reactivating
resumes the mailboxes no admin paused for another reason (``shared.services.directory``). A
change that would leave no active admin is a 409, decided inside the store's transaction.
"""

from __future__ import annotations

import flask
from pydantic import model_validator

from functions.admin.schemas import ApiModel, EmailAddress, NameText
from functions.admin_api import api
from shared import wiring
from shared.domain.models import Caller, Role, User
from shared.services import directory
from shared.web import ADMINS, PEOPLE


class Me(ApiModel):
    email: str
    role: Role
    user_id: str


class UserStatus(User):
    """A user as the console lists them: ``outside_team_domains`` flags one whose address is
    outside the fund's domains (kept, not deleted; their sign-in and the digest refuse them)."""

    outside_team_domains: bool = False


class UserList(ApiModel):
    items: list[UserStatus]
    team_domains: list[str]


class NewUser(ApiModel):
    email: EmailAddress
    name: NameText = ""
    role: Role = Role.MEMBER


class UserPatch(ApiModel):
    """What to change: a role, activity (false deactivates, true reactivates), or both."""

    role: Role | None = None
    is_active: bool | None = None

    @model_validator(mode="after")
    def _something(self) -> UserPatch:
        if self.role is None and self.is_active is None:
            raise ValueError("give role or is_active")
        return self


class UserChanged(ApiModel):
    """The user now, whether this request changed them, and the mailboxes (ids) it paused
    (owner deactivated) or resumed (owner reactivated, no other reason to stay paused)."""

    user: User
    changed: bool
    paused_mailboxes: list[str]
    resumed_mailboxes: list[str]


@api.route("GET", "/me", roles=PEOPLE, response=Me, tag="people")
def me(request: flask.Request, caller: Caller) -> Me:
    """Who the caller is: any active user."""
    return Me(email=caller.email, role=Role(caller.role), user_id=caller.user_id or "")


@api.route("GET", "/users", roles=ADMINS, response=UserList, tag="people")
def list_users(request: flask.Request, caller: Caller) -> UserList:
    """Every user, active or not; those outside the fund's domains flagged."""
    team = wiring.team_domains()
    return UserList(
        items=[
            UserStatus(**dict(user), outside_team_domains=not team.admits(user.email))
            for user in wiring.store().list_users()
        ],
        team_domains=sorted(team.domains),
    )


@api.route(
    "POST",
    "/users",
    roles=ADMINS,
    body=NewUser,
    response=User,
    status=201,
    errors=(409,),
    tag="people",
)
def add_user(request: flask.Request, caller: Caller, body: NewUser) -> User:
    """Add a user (audited); 400 outside the fund's domains (CRM_TEAM_DOMAINS), 409 if the
    address is taken."""
    return directory.add_user(
        wiring.store(),
        caller,
        email=body.email,
        name=body.name,
        role=body.role,
        team=wiring.team_domains(),
    )


@api.route("GET", "/users/<user_id>", roles=ADMINS, response=User, tag="people")
def get_user(request: flask.Request, caller: Caller, user_id: str) -> User:
    """One user; 404 if unknown."""
    return directory.get_user(wiring.store(), user_id)


@api.route(
    "PATCH",
    "/users/<user_id>",
    roles=ADMINS,
    body=UserPatch,
    response=UserChanged,
    errors=(409,),
    tag="people",
)
def change_user(
    request: flask.Request, caller: Caller, user_id: str, body: UserPatch
) -> UserChanged:
    """Change a user's role, or deactivate / reactivate them (audited).

    Deactivating pauses the user's mailboxes and drops them from the digest; reactivating
    resumes the ones not paused for another reason. 409 if no active admin would remain."""
    change = directory.change_user(
        wiring.store(),
        caller,
        user_id,
        role=body.role,
        is_active=body.is_active,
        queue=wiring.queue(),
    )
    for account_id in change.resumed_mailboxes:
        # Back with their owner: watched at once, as a resumed mailbox is (its sync was asked).
        wiring.start_capture(account_id, request_sync=False)
    return UserChanged(
        user=change.user,
        changed=change.changed,
        paused_mailboxes=change.paused_mailboxes,
        resumed_mailboxes=change.resumed_mailboxes,
    )

"""Who am I, and the fund's users (admins only): list and add."""

from __future__ import annotations

import flask

from functions.admin.schemas import ApiModel
from functions.admin_api import api
from shared import wiring
from shared.domain.models import Address, Caller, Role, User
from shared.services import directory
from shared.web import ADMINS, PEOPLE


class Me(ApiModel):
    email: str
    role: Role
    user_id: str


class UserList(ApiModel):
    items: list[User]


class NewUser(ApiModel):
    email: Address
    name: str = ""
    role: Role = Role.MEMBER


@api.route("GET", "/me", roles=PEOPLE, response=Me, tag="people")
def me(request: flask.Request, caller: Caller) -> Me:
    """Who the caller is: any active user."""
    return Me(email=caller.email, role=Role(caller.role), user_id=caller.user_id or "")


@api.route("GET", "/users", roles=ADMINS, response=UserList, tag="people")
def list_users(request: flask.Request, caller: Caller) -> UserList:
    """Every user, active or not."""
    return UserList(items=wiring.store().list_users())


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
    """Add a user (audited); 409 if the address is taken."""
    return directory.add_user(
        wiring.store(), caller, email=body.email, name=body.name, role=body.role
    )

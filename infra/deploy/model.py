"""What a plan is made of, how live and wanted resources are compared, and how IAM converges.

Every resource kind is compared through a *view*: a flat ``{key: value}`` of exactly the fields
the deployment manages, normalised (durations in seconds, memory sizes as number and unit,
absent proto3 defaults filled in). Fields a server adds or owns (``LOG_EXECUTION_ID``,
``updateTime``, a subscription's state) never appear in a view, so they never show as a change
and a second ``apply`` finds nothing to do.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Action = Literal["create", "update", "unchanged"]


@dataclass(frozen=True)
class FieldChange:
    key: str
    before: Any
    after: Any

    def describe(self) -> str:
        if self.before is None:
            return f"{self.key}: {_show(self.after)}"
        return f"{self.key}: {_show(self.before)} -> {_show(self.after)}"


@dataclass
class Change:
    """One resource's difference between the live project and the spec."""

    kind: str
    name: str
    action: Action
    fields: list[FieldChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    run: Callable[[], None] | None = None

    @property
    def changes_anything(self) -> bool:
        return self.action != "unchanged"


_SYMBOL = {"create": "+", "update": "~", "unchanged": "="}


def render(changes: list[Change], *, header: str, verbose: bool = False) -> str:
    """The readable plan: one line per resource that changes, its fields, then notes."""
    counts = {action: sum(c.action == action for c in changes) for action in _SYMBOL}
    lines = [
        f"{header}: {counts['create']} to create, {counts['update']} to update, "
        f"{counts['unchanged']} unchanged",
        "",
    ]
    width = max((len(c.kind) for c in changes), default=0)
    for change in changes:
        if change.action == "unchanged" and not verbose:
            continue
        lines.append(f"{_SYMBOL[change.action]} {change.kind.ljust(width)}  {change.name}")
        if change.action == "update" or verbose:
            lines.extend(f"      {item.describe()}" for item in change.fields)
    notes = [(c, note) for c in changes for note in c.notes]
    if notes:
        lines += ["", "Notes:"]
        lines += [f"  ! {change.kind} {change.name}: {note}" for change, note in notes]
    if not any(c.changes_anything for c in changes):
        lines += ["", "No changes: the project matches the spec."]
    return "\n".join(lines)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value) if len(value) <= 100 else repr(value[:97] + "...")
    return repr(value)


# --- views ----------------------------------------------------------------------------------


def dig(resource: Mapping[str, Any] | None, path: str, default: Any = None) -> Any:
    """``resource["a"]["b"]`` for ``"a.b"``; ``default`` where anything is missing."""
    value: Any = resource
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return default
        value = value[part]
    return value


def diff(live: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> list[FieldChange]:
    """Keys of ``wanted`` whose live value differs (all of them when ``live`` is None)."""
    if live is None:
        return [FieldChange(key, None, value) for key, value in wanted.items()]
    return [
        FieldChange(key, live.get(key), value)
        for key, value in wanted.items()
        if live.get(key) != value
    ]


def seconds(value: Any) -> float:
    """A duration as seconds: ``"10s"``, ``"1.5s"``, a ``timedelta`` or a number."""
    if value is None or value == "":
        return 0.0
    if hasattr(value, "total_seconds"):
        return float(value.total_seconds())
    if isinstance(value, int | float):
        return float(value)
    match = re.fullmatch(r"(-?[0-9.]+)s", str(value))
    if not match:
        raise ValueError(f"not a duration: {value!r}")
    return float(match.group(1))


def memory(value: Any) -> str:
    """``256Mi``, ``256M`` and ``256MB`` compare equal: the size as the deployment states it."""
    match = re.fullmatch(r"([0-9]+)\s*([kKMG])?i?B?", str(value or ""))
    if not match:
        return str(value)
    return f"{match.group(1)}{(match.group(2) or '').upper()}"


# --- IAM ------------------------------------------------------------------------------------


def converge_policy(
    policy: Mapping[str, Any],
    wanted: Mapping[str, Iterable[str]],
    *,
    managed: Iterable[str] = (),
    forbidden: Iterable[str] = (),
) -> tuple[dict[str, Any] | None, list[FieldChange]]:
    """The policy with ``wanted`` granted; None when it already holds exactly what it should.

    Bindings of anyone else are kept untouched (read-modify-write never drops another
    writer's grant), conditional bindings included. ``managed`` members (the deployment's own
    service accounts) lose roles the spec no longer gives them, so least privilege holds
    after a role is withdrawn; ``forbidden`` members (``allUsers``) are removed from every role.
    """
    managed_set = set(managed)
    forbidden_set = set(forbidden)
    wanted_sets = {role: set(members) for role, members in wanted.items()}
    changes: list[FieldChange] = []
    bindings: list[dict[str, Any]] = []
    seen_roles: set[str] = set()
    for binding in policy.get("bindings", []) or []:
        role = binding.get("role", "")
        members = list(binding.get("members", []))
        if "condition" in binding:
            bindings.append(dict(binding))
            continue
        keep = []
        for member in members:
            dropped = member in forbidden_set or (
                member in managed_set and member not in wanted_sets.get(role, set())
            )
            if dropped:
                changes.append(FieldChange(role, member, None))
            else:
                keep.append(member)
        missing = sorted(wanted_sets.get(role, set()) - set(keep) - seen_members(bindings, role))
        changes += [FieldChange(role, None, member) for member in missing]
        keep += missing
        seen_roles.add(role)
        if keep:
            bindings.append({**binding, "members": keep})
    for role in sorted(set(wanted_sets) - seen_roles):
        members = sorted(wanted_sets[role])
        if members:
            changes += [FieldChange(role, None, member) for member in members]
            bindings.append({"role": role, "members": members})
    if not changes:
        return None, []
    new_policy = {key: value for key, value in policy.items() if key != "bindings"}
    new_policy["bindings"] = bindings
    return new_policy, changes


def seen_members(bindings: list[dict[str, Any]], role: str) -> set[str]:
    """Members already granted ``role`` by an earlier unconditional binding (duplicates)."""
    return {
        member
        for binding in bindings
        if binding.get("role") == role and "condition" not in binding
        for member in binding.get("members", [])
    }


def describe_grant(change: FieldChange) -> FieldChange:
    """A policy change as the plan prints it: ``roles/x: +member`` or ``-member``."""
    if change.before is None:
        return FieldChange(change.key, None, f"+{change.after}")
    return FieldChange(change.key, None, f"-{change.before}")

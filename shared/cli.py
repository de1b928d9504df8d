"""Operator commands: ``python -m shared.cli bootstrap-admin EMAIL [NAME]``.

Runs against whatever store the ``CRM_*`` settings name (SQLite file or Firestore project). An
address outside the fund's domains (``CRM_TEAM_DOMAINS``, else the domain of
``CRM_BOOTSTRAP_ADMIN``) is refused; with neither set, the first admin's domain becomes the
team's.
"""

from __future__ import annotations

import argparse
import sys

from shared import wiring


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.cli")
    commands = parser.add_subparsers(dest="command", required=True)
    bootstrap = commands.add_parser(
        "bootstrap-admin", help="create the first admin; refused once an active admin exists"
    )
    bootstrap.add_argument("email")
    bootstrap.add_argument("name", nargs="?", default="")
    args = parser.parse_args(argv)

    if args.command == "bootstrap-admin":
        team = wiring.team_domains()
        if not team.admits(args.email):
            print(
                f"refused: {args.email.strip().lower()} is outside the fund's domains "
                f"({', '.join(sorted(team.domains))}, from {team.source})",
                file=sys.stderr,
            )
            return 1
        if wiring.store().bootstrap_admin(args.email, args.name):
            print(f"created admin {args.email.strip().lower()}")
            return 0
        print("refused: an active admin already exists", file=sys.stderr)
        return 1
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())

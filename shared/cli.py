"""Operator commands, run against whatever store the ``CRM_*`` settings name (SQLite file or
Firestore project):

- ``python -m shared.cli bootstrap-admin EMAIL [NAME]``: the first admin. An address outside
  the fund's domains (``CRM_TEAM_DOMAINS``, else the domain of ``CRM_BOOTSTRAP_ADMIN``) is
  refused; with neither set, the first admin's domain becomes the team's.
- ``python -m shared.cli repair-digest-fields [--max-pages N] [--restart]``: give emails
  stored before the digest's denormalised fields existed those fields (sent mailboxes, links).
- ``python -m shared.cli repair-participants [--all] [--max-pages N] [--restart]``: re-fetch and
  re-match emails whose stored participants may have been invented (``shared.services.repair``).
- ``python -m shared.cli repair-snippets [--max-pages N] [--restart]``: unescape Gmail's
  HTML-escaped snippets once and rebuild their search words.

The repairs are resumable: each keeps its cursor in the store and continues where it stopped.
"""

from __future__ import annotations

import argparse
import sys

from shared import wiring


def _repair_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--max-pages",
        type=int,
        default=None,
        help="stop after this many pages of emails (the next run continues from there)",
    )
    command.add_argument(
        "--restart",
        action="store_true",
        help="scan from the first email again, even after a finished run (harmless)",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.cli")
    commands = parser.add_subparsers(dest="command", required=True)
    bootstrap = commands.add_parser(
        "bootstrap-admin", help="create the first admin; refused once an active admin exists"
    )
    bootstrap.add_argument("email")
    bootstrap.add_argument("name", nargs="?", default="")
    participants = commands.add_parser(
        "repair-participants",
        help="re-fetch the headers of emails whose stored participants may be invented, and"
        " re-match them",
    )
    participants.add_argument(
        "--all",
        action="store_true",
        dest="everything",
        help="re-fetch every email a mailbox holds, not only those showing the fault",
    )
    _repair_options(participants)
    digest_fields = commands.add_parser(
        "repair-digest-fields",
        help="recompute the digest's fields (sent mailboxes, links) on emails stored before them",
    )
    _repair_options(digest_fields)
    snippets = commands.add_parser(
        "repair-snippets", help="unescape stored Gmail snippets once and rebuild their search words"
    )
    _repair_options(snippets)
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
    if args.command in ("repair-participants", "repair-snippets", "repair-digest-fields"):
        # Imported here: bootstrap-admin should not pay for the parser and the matcher.
        from shared.services import repair

        if args.max_pages is not None and args.max_pages < 1:
            parser.error("--max-pages must be at least 1")
        if args.command == "repair-participants":
            run = repair.repair_participants(
                wiring.store(),
                gmail_for=wiring.gmail_for,
                max_pages=args.max_pages,
                restart=args.restart,
                everything=args.everything,
            )
        elif args.command == "repair-snippets":
            run = repair.repair_snippets(
                wiring.store(), max_pages=args.max_pages, restart=args.restart
            )
        else:
            run = repair.repair_digest_fields(
                wiring.store(), max_pages=args.max_pages, restart=args.restart
            )
        print(run.describe())
        return 0
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())

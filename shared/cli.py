"""Operator commands, run against whatever store the ``CRM_*`` settings name (SQLite file or
Firestore project):

- ``python -m shared.cli bootstrap-admin EMAIL [NAME]``: the first admin. An address outside
  the fund's domains (``CRM_TEAM_DOMAINS``, else the domain of ``CRM_BOOTSTRAP_ADMIN``) is
  refused; with neither set, the first admin's domain becomes the team's.
- ``python -m shared.cli repair-digest-fields [--max-pages N] [--restart]``: give emails
  stored before the digest's denormalised fields existed those fields (sent mailboxes, links),
  and links stored before they carried names their names.
- ``python -m shared.cli repair-participants [--all] [--max-pages N] [--restart]``: re-fetch and
  re-match emails whose stored participants may have been invented (``shared.services.repair``).
- ``python -m shared.cli repair-snippets [--max-pages N] [--restart]``: unescape Gmail's
  HTML-escaped snippets once and rebuild their search words.
- ``python -m shared.cli refresh-listing-keys [INVESTOR_ID ...]``: give records written before
  the admin lists their listing keys (Firestore documents; SQLite's migration does it) and
  re-derive investors' last contact from stored mail (``ListingStore.refresh_listing_keys``).
  Idempotent; run it once after upgrading, and daily to keep the last-contact sort current.
- ``python -m shared.cli recompute-relationships``: rebuild every relationship contribution
  row from stored mail, then re-score every investor (after an upgrade that added them, or to
  check: it prints how many rows it had to change, 0 when capture kept them right).

The repairs are resumable: each keeps its cursor in the store and continues where it stopped.

- ``python -m shared.cli doctor [--mailbox ADDRESS ...]``: check the configuration and say what
  is wrong and how to fix it (``shared.doctor``); exit 0 only when every required check passes.
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
        help="recompute the digest's fields (sent mailboxes, links and their names) on emails "
        "stored before them",
    )
    _repair_options(digest_fields)
    snippets = commands.add_parser(
        "repair-snippets", help="unescape stored Gmail snippets once and rebuild their search words"
    )
    _repair_options(snippets)
    doctor = commands.add_parser(
        "doctor", help="check the configuration; exit 0 only when every required check passes"
    )
    doctor.add_argument(
        "--mailbox",
        action="append",
        default=[],
        help="check the delegation grant for this mailbox (default: every active mailbox)",
    )
    listing = commands.add_parser(
        "refresh-listing-keys",
        help="fill the admin lists' keys of older records and re-derive investors' last contact",
    )
    listing.add_argument("investor_ids", nargs="*", help="only these investors (default: all)")
    commands.add_parser(
        "recompute-relationships",
        help="rebuild relationship rows from stored mail and re-score every investor",
    )
    args = parser.parse_args(argv)

    if args.command == "doctor":
        # Imported here: the other commands should not pay for it.
        from shared import doctor as doctor_module

        return doctor_module.main(args.mailbox)

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
    if args.command == "refresh-listing-keys":
        changed = wiring.store().refresh_listing_keys(args.investor_ids or None)
        print(f"listing keys refreshed: {changed} record(s) changed")
        return 0
    if args.command == "recompute-relationships":
        from shared.services import relationships

        result = relationships.recompute(wiring.store(), now=wiring.clock().now())
        print(
            f"recomputed relationships: {result.emails} emails, {result.rows_changed} rows"
            f" changed, {result.rescore.investors} investors scored"
        )
        return 0
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())

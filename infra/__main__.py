"""``python -m infra``: plan and apply the deployment, build the bundle, keep the lock, demo it.

    python -m infra plan  [--site infra/deploy.yaml] [--endpoint URL] [--json] [-v]
    python -m infra apply [--site infra/deploy.yaml] [--endpoint URL] [--yes]
    python -m infra bundle            # build/bundle/, what Cloud Functions receives
    python -m infra lock [--check]    # infra/requirements.lock from requirements.txt
    python -m infra spec [--site ...] # the whole spec as JSON
    python -m infra standins          # serve the loopback stand-ins until Ctrl-C
    python -m infra demo              # plan, apply, apply again against the stand-ins

Against Google the tool uses Application Default Credentials. ``--endpoint`` (or
``CRM_INFRA_ENDPOINT``) sends every call to a loopback stand-in instead (``infra.standins``),
with anonymous credentials; any other endpoint is refused. Heavy imports happen per command.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from infra import spec as specs
from infra.deploy.clients import CredentialsError, EndpointError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("plan", "apply", "spec"):
        sub = commands.add_parser(name)
        sub.add_argument("--site", type=Path, default=specs.DEFAULT_SITE_FILE)
        sub.add_argument("--endpoint", default=os.environ.get("CRM_INFRA_ENDPOINT", ""))
        if name == "plan":
            sub.add_argument("--json", action="store_true", help="the plan as JSON")
            sub.add_argument("-v", "--verbose", action="store_true", help="unchanged ones too")
        if name == "apply":
            sub.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        if name == "spec":
            sub.add_argument("--project-number", default="", help="skip reading it")
    bundle_parser = commands.add_parser("bundle")
    bundle_parser.add_argument("--out", type=Path, default=None)
    lock_parser = commands.add_parser("lock")
    lock_parser.add_argument("--check", action="store_true", help="fail if the lock lags")
    standins = commands.add_parser("standins")
    standins.add_argument("--project", default="crm-sandbox")
    demo = commands.add_parser("demo")
    demo.add_argument("--site", type=Path, default=specs.EXAMPLE_SITE_FILE)
    args = parser.parse_args(argv)

    try:
        if args.command == "bundle":
            return _bundle(args.out)
        if args.command == "lock":
            return _lock(args.check)
        if args.command == "standins":
            return _standins(args.project)
        if args.command == "demo":
            return _demo(args.site)
        if args.command == "spec":
            return _spec(args.site, args.endpoint, args.project_number)
        return _deploy(args)
    except (specs.SpecError, EndpointError, CredentialsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _context(site_file: Path, endpoint: str, *, quiet: bool = False) -> object:
    from infra import bundle
    from infra.deploy.clients import Clients
    from infra.deploy.engine import Context, read_project_number

    site = specs.load_site(site_file)
    clients = Clients(endpoint=endpoint)
    number = read_project_number(clients, site.project)
    spec = specs.build_spec(site, project_number=number)
    return Context(
        spec=spec,
        clients=clients,
        bundle=bundle.collect(),
        poll_interval=0.0 if endpoint else 3.0,
        out=(lambda _line: None) if quiet else print,
    )


def console_url(functions_base_url: str) -> str:
    """Where the deployed console answers: ``admin_api`` serves it (functions/console.py).
    Its origin is what the OAuth client lists as an authorised JavaScript origin."""
    return f"{functions_base_url}/admin_api/console/"


def _deploy(args: argparse.Namespace) -> int:
    from infra.deploy import engine
    from infra.deploy.model import render

    context = _context(args.site, args.endpoint)
    assert isinstance(context, engine.Context)
    header = f"Plan for {context.spec.project} ({context.spec.region})"
    changes = engine.plan(context)
    if args.command == "plan":
        if args.json:
            print(engine.dumps(changes))
        else:
            print(render(changes, header=header, verbose=args.verbose))
        return 0
    print(render(changes, header=header))
    if not any(change.changes_anything for change in changes):
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            print("error: not a terminal; run `python -m infra apply --yes`", file=sys.stderr)
            return 2
        if input("\nApply these changes? [y/N] ").strip().lower() not in ("y", "yes"):
            print("Nothing applied.")
            return 1
    print("\nApplying:")
    engine.apply(context)
    print("\nDone. Run `python -m infra plan` to check: it should find no changes.")
    print(f"The admin console: {console_url(context.spec.functions_base_url)}")
    return 0


def _spec(site_file: Path, endpoint: str, project_number: str) -> int:
    site = specs.load_site(site_file)
    if not project_number:
        from infra.deploy.clients import Clients
        from infra.deploy.engine import read_project_number

        project_number = read_project_number(Clients(endpoint=endpoint), site.project)
    spec = specs.build_spec(site, project_number=project_number)
    print(json.dumps(spec.model_dump(mode="json"), indent=2))
    return 0


def _bundle(out: Path | None) -> int:
    from infra import bundle

    built = bundle.collect()
    path = bundle.write(built, out or bundle.BUNDLE_DIR)
    print(f"{path}: {len(built.files)} files, source hash {built.source_hash}")
    return 0


def _lock(check: bool) -> int:
    from infra import lock

    if check:
        problems = lock.drift() + [
            f"not an exact pin: {line}" for line in lock.unpinned_lines(lock.REQUIREMENTS)
        ]
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    pins = lock.write_lock()
    print(f"{lock.LOCK_FILE}: {len(pins)} packages pinned")
    return 0


def _standins(project: str) -> int:
    import time

    from infra.standins import CloudStandIn

    with CloudStandIn(project=project) as standin:
        print(f"Stand-ins for project {project} at {standin.endpoint}", flush=True)
        print(f"  python -m infra plan --endpoint {standin.endpoint} --site ...", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


def _demo(site_file: Path) -> int:
    from infra.deploy import engine
    from infra.deploy.model import render
    from infra.standins import CloudStandIn

    site = specs.load_site(site_file)
    with CloudStandIn(project=site.project) as standin:
        print(f"Loopback stand-ins at {standin.endpoint} for project {site.project}\n")
        context = _context(site_file, standin.endpoint)
        assert isinstance(context, engine.Context)
        header = f"Plan for {context.spec.project} ({context.spec.region})"
        print(render(engine.plan(context), header=header))
        print("\n== apply (first)")
        engine.apply(context)
        first = len(standin.mutations())
        standin.clear_requests()
        print("\n== apply (second)")
        engine.apply(context)
        second = standin.mutations()
        print(f"\nfirst apply: {first} mutations; second apply: {len(second)} mutations")
        for request in second:
            print(f"  unexpected: {request}")
        print()
        print(render(engine.plan(context), header=header))
        return 1 if second else 0


if __name__ == "__main__":
    sys.exit(main())

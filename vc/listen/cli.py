"""`vc listen ...`: build a listening test from a run's folders, invite raters, serve, export the ratings.

vc listen build --converted converted/experiments --baselines converted/baselines --corpus data/corpus
vc listen invite --n 5
vc listen serve                    # http://127.0.0.1:8765 (loopback only unless --host)
vc listen revoke <token>
vc listen status
vc listen export                   # listening-test/exports/ratings-<UTC time>.csv, never overwritten

``python -m vc.listen.cli <command> ...`` runs the same commands without the ``vc`` front end.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from vc.errors import InputError

__all__ = ["DEFAULT_FOLDER", "add_commands", "main"]

log = logging.getLogger("vc.listen")
DEFAULT_FOLDER = "listening-test"
DEFAULT_PORT = 8765


def _pair(text: str) -> tuple[str, str]:
    src, sep, tgt = text.partition(":")
    if not (sep and src and tgt):
        raise argparse.ArgumentTypeError(f"a pair is SOURCE:TARGET, got '{text}'")
    return src, tgt


def _build(args: argparse.Namespace) -> None:
    from vc.listen.protocol import build_definition, save_definition
    from vc.listen.store import ListenFolder

    paths = ListenFolder(Path(args.folder))
    if paths.definition.exists() and not args.replace:
        raise InputError(
            f"{paths.definition}: a test exists already (--replace rebuilds it; ratings are kept)"
        )
    definition = build_definition(
        args.converted,
        args.corpus,
        baselines_dir=args.baselines,
        seed=args.seed,
        experiments=args.experiments,
        baselines=args.only_baselines,
        pairs=args.pairs,
        sentences=args.sentences,
        similarity_reference=args.similarity_reference,
        per_rater=args.per_rater,
        title=args.title,
        show_text=not args.no_text,
    )
    save_definition(definition, paths.definition)
    names = ", ".join(s.name for s in definition.systems)
    log.info(
        "wrote %s: %d trials of %d systems (%s)",
        paths.definition,
        len(definition.items),
        len(definition.systems),
        names,
    )


def _invite(args: argparse.Namespace) -> None:
    from vc.listen.store import ListenFolder, RatingStore

    paths = ListenFolder(Path(args.folder))
    if not paths.definition.is_file():
        raise InputError(f"{paths.definition}: no test yet (run `vc listen build` first)")
    base = args.base_url.rstrip("/")
    for token in RatingStore(paths.database).invite(args.n):
        sys.stdout.write(f"{base}/t/{token}\n")


def _revoke(args: argparse.Namespace) -> None:
    from vc.listen.store import ListenFolder, RatingStore

    store = RatingStore(ListenFolder(Path(args.folder)).database)
    for token in args.tokens:
        store.revoke(token)
        log.info("revoked %s (its answers so far are kept)", token)


def _status(args: argparse.Namespace) -> None:
    from vc.listen.protocol import load_definition, rater_order
    from vc.listen.store import ListenFolder, RatingStore

    paths = ListenFolder(Path(args.folder))
    definition = load_definition(paths.definition)
    store = RatingStore(paths.database)
    for token, created, revoked in store.raters():
        total = len(rater_order(definition, token))
        state = f"revoked {revoked}" if revoked else "active"
        sys.stdout.write(f"{token}\t{len(store.answered(token))}/{total}\tinvited {created}\t{state}\n")


def _serve(args: argparse.Namespace) -> None:
    from vc.listen.app import serve

    serve(args.folder, host=args.host, port=args.port)


def _export(args: argparse.Namespace) -> None:
    from vc.listen.protocol import load_definition
    from vc.listen.store import ListenFolder, RatingStore, export_ratings

    paths = ListenFolder(Path(args.folder))
    out = export_ratings(
        RatingStore(paths.database),
        load_definition(paths.definition),
        args.out,
        folder=paths.exports,
        fmt=args.format,
    )
    sys.stdout.write(f"{out}\n")


def _add_build(sub: argparse._SubParsersAction, folder: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "build", parents=[folder], help="build the test definition from a run's converted wavs"
    )
    p.add_argument("--converted", required=True, help="the convert stages' folder (converted/experiments)")
    p.add_argument("--corpus", required=True, help="the corpus stage's folder (data/corpus)")
    p.add_argument("--baselines", default=None, help="the baselines stage's wavs (converted/baselines)")
    p.add_argument("--seed", type=int, default=0, help="the training seed whose conversions are rated")
    p.add_argument("--experiments", nargs="+", default=None, help="default: every experiment found")
    p.add_argument("--only-baselines", nargs="+", default=None, help="default: every baseline found")
    p.add_argument("--pairs", nargs="+", type=_pair, default=None, help="SOURCE:TARGET ... (default: all)")
    p.add_argument("--sentences", type=int, default=2, help="sentences per pair")
    p.add_argument("--per-rater", type=int, default=None, help="trials per task per rater (default: all)")
    p.add_argument("--similarity-reference", choices=["different", "same"], default="different")
    p.add_argument("--title", default="Voice conversion listening test")
    p.add_argument("--no-text", action="store_true", help="do not show the sentence's text")
    p.add_argument("--replace", action="store_true", help="rebuild an existing test (ratings are kept)")
    p.set_defaults(func=_build)


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``listen`` and its subcommands to the ``vc`` command's subparsers."""
    listen = sub.add_parser("listen", help="a listening test (VCC protocol) on a run's conversions")
    commands = listen.add_subparsers(dest="listen_command", required=True)
    folder = argparse.ArgumentParser(add_help=False)
    folder.add_argument(
        "--folder", default=DEFAULT_FOLDER, help=f"the test's folder (default {DEFAULT_FOLDER})"
    )
    _add_build(commands, folder)
    p = commands.add_parser("invite", parents=[folder], help="print invitation links with new rater tokens")
    p.add_argument("--n", type=int, default=1, help="how many raters")
    p.add_argument("--base-url", default=f"http://127.0.0.1:{DEFAULT_PORT}", help="the URL raters open")
    p.set_defaults(func=_invite)
    p = commands.add_parser("revoke", parents=[folder], help="revoke rater tokens (their answers are kept)")
    p.add_argument("tokens", nargs="+")
    p.set_defaults(func=_revoke)
    p = commands.add_parser("status", parents=[folder], help="each rater's progress")
    p.set_defaults(func=_status)
    p = commands.add_parser("serve", parents=[folder], help="serve the test (loopback only by default)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.set_defaults(func=_serve)
    p = commands.add_parser("export", parents=[folder], help="write the ratings to a new file")
    p.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    p.add_argument("--out", default=None, help="a new file (default: <folder>/exports/ratings-<UTC time>)")
    p.set_defaults(func=_export)


def main(argv: list[str] | None = None) -> None:
    """``python -m vc.listen.cli <command>``: the ``vc listen`` commands on their own."""
    parser = argparse.ArgumentParser(prog="vc")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["listen", *(sys.argv[1:] if argv is None else argv)])
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s")
    try:
        args.func(args)
    except ValueError as err:  # InputError and the stores' errors name the file or option
        log.error("%s", err)
        sys.exit(2)


if __name__ == "__main__":
    main()

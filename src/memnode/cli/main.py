"""The ``memnode`` command line.

Client commands (remember, recall, get, update, forget, status, import, export, watch) import
only the gRPC client: no Chroma, no model. ``serve`` imports the node lazily.

Exit codes: 0 success; 1 the node refused or failed the request (also: no or a bad token,
"unauthenticated"; a token without the scope, "permission denied"); 2 bad usage or input;
3 the node cannot be reached; 4 no such memory.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from memnode.cli.admin import add_admin_commands
from memnode.cli.audit import add_audit_command
from memnode.cli.tokens import add_token_commands
from memnode.cli.watch import add_watch_command
from memnode.client import Client, Hit, NewMemory, default_addr
from memnode.errors import InvalidArgument, MemnodeError, NotFound, Unavailable, UsageError
from memnode.values import parse_value

EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_NOT_FOUND = 1, 2, 3, 4


def _pairs(items: Sequence[str] | None, flag: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} expects KEY=VALUE, got {item!r}")
        out[key] = parse_value(value)
    return out


def _client(args: argparse.Namespace) -> Client:
    return Client(args.addr, timeout=args.timeout, token=args.token, tls_ca=args.tls_ca,
                  reason=args.reason)


def _text_arg(value: str) -> bytes:
    # Keep undecodable bytes from argv as they are, so the client refuses them clearly.
    return os.fsencode(value)


# -- commands --------------------------------------------------------------------------


def cmd_remember(args: argparse.Namespace) -> int:
    with _client(args) as client:
        mid = client.remember(_text_arg(args.text), _pairs(args.meta, "--meta"),
                              privacy=args.privacy, keep_pii=args.keep_pii,
                              ttl_seconds=args.ttl or 0)
    print(mid)
    return 0


def _hit_line(hit: Hit) -> str:
    meta = " ".join(f"{k}={v}" for k, v in sorted(hit.metadata.items()))
    where = "local" if hit.local else f"from {hit.origin}"
    text = hit.text if hit.text else "(text stays on its origin node)"
    line = f"{hit.score:6.3f}  {hit.id}  [{hit.privacy}, {where}]\n        {text}"
    return line + (f"\n        {meta}" if meta else "")


def cmd_recall(args: argparse.Namespace) -> int:
    with _client(args) as client:
        hits = client.recall(args.query, args.k, scope=args.scope,
                             where=_pairs(args.where, "--where"))
    if args.json:
        print(json.dumps([h.__dict__ for h in hits], ensure_ascii=False))
    elif not hits:
        print("no memories found", file=sys.stderr)
    else:
        print("\n".join(_hit_line(h) for h in hits))
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    with _client(args) as client:
        memory = client.get(args.id)
    print(json.dumps(memory.__dict__, ensure_ascii=False, indent=None if args.json else 2))
    return 0


def cmd_update(args: argparse.Namespace) -> int:
    with _client(args) as client:
        memory = client.update(args.id, _pairs(args.meta, "--meta"), args.remove or ())
    print(json.dumps(memory.__dict__, ensure_ascii=False))
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    where = _pairs(args.where, "--where")
    if bool(args.id) == bool(where):
        raise UsageError("forget takes a memory ID or --where K=V filters (one of the two)")
    with _client(args) as client:
        count = client.forget(args.id or "", where=where)
    print(f"forgot {args.id}" if args.id else f"forgot {count} memories matching "
          + " ".join(args.where), file=sys.stderr)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with _client(args) as client:
        status = client.status().to_json()
    if args.json:
        print(json.dumps(status))
        return 0
    model = status["model"]
    mem = status["memories"]
    print(f"node      {status['node_id']}  (memnode {status['version']})")
    print(f"model     {model['name']} dim={model['dim']} fingerprint={model['fingerprint']}")
    print(f"memories  local={mem['local']} replicated={mem['replicated']} "
          f"ephemeral={mem['ephemeral']}")
    print(f"origins   {len(status['version_vector'])}")
    for origin, seq in sorted(status["version_vector"].items()):
        print(f"          {origin}  seq {seq}")
    for problem in status["problems"]:
        print(f"problem   {problem}")
    if status["lost_texts"]:
        print(f"restore   {status['lost_texts']} own memories came back from peers without "
              "their text (written after the backup)")
    print(f"peers     {len(status['peers'])}")
    for peer in status["peers"]:
        print(f"          {peer['node_id']}  {peer['address']}  {peer['state']}  "
              f"behind {peer['events_behind']}  found by {peer['found_by'] or 'gossip'}")
    return 0


_IMPORT_FIELDS = {"text", "metadata", "privacy", "keep_pii", "ttl_seconds",
                  "id", "origin", "local", "created_at_ms", "updated_at_ms", "expires_at_ms"}


def _read_jsonl(stream: TextIO, name: str) -> list[NewMemory]:
    """Parse and check every line before anything is sent (no partial import on a typo)."""
    items = []
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{name}:{number}: not JSON ({exc.msg})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            raise UsageError(f'{name}:{number}: expected an object with a "text" string')
        unknown = set(obj) - _IMPORT_FIELDS
        if unknown:
            raise UsageError(f"{name}:{number}: unknown fields {sorted(unknown)}")
        meta = obj.get("metadata") or {}
        if not isinstance(meta, dict) or any(
            not isinstance(v, str | int | float | bool) for v in meta.values()
        ):
            raise UsageError(f"{name}:{number}: metadata must be a flat object of "
                             "str/int/float/bool")
        items.append(NewMemory(obj["text"], meta, obj.get("privacy", "team"),
                               bool(obj.get("keep_pii", False)), int(obj.get("ttl_seconds", 0))))
    return items


def cmd_import(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    if args.file == "-":
        items = _read_jsonl(sys.stdin, "<stdin>")
    else:
        try:
            with open(args.file, encoding="utf-8") as f:
                items = _read_jsonl(f, args.file)
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {args.file}: {exc}") from None
    batches = [items[i : i + args.batch] for i in range(0, len(items), args.batch)]
    done = 0
    with _client(args) as client, tqdm(total=len(items), unit="mem", file=sys.stderr,
                                       disable=args.quiet or None) as bar:
        try:
            for ids in client.remember_batches(iter(batches)):
                done += len(ids)
                bar.update(len(ids))
                if args.ids:
                    print("\n".join(ids))
        except MemnodeError as exc:
            raise type(exc)(f"{exc} (imported {done} of {len(items)}: every batch before "
                            f"the failing one is stored; the failing one is not)") from None
    print(f"imported {done} memories", file=sys.stderr)
    return 0


def _export_lines(client: Client, scope: str, where: dict[str, Any]) -> Iterator[str]:
    for memory in client.list(scope=scope, where=where):
        yield json.dumps(memory.__dict__, ensure_ascii=False)


def cmd_export(args: argparse.Namespace) -> int:
    out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8")  # noqa: SIM115
    count = 0
    try:
        with _client(args) as client:
            for line in _export_lines(client, args.scope, _pairs(args.where, "--where")):
                out.write(line + "\n")
                count += 1
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"exported {count} memories", file=sys.stderr)
    return 0


# -- parser ----------------------------------------------------------------------------


def build_parser(with_serve_flags: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memnode", description="A peer-to-peer memory mesh for AI agents.")
    parser.add_argument("--log-level", default=os.environ.get("MEMNODE_LOG_LEVEL", "INFO"))
    parser.add_argument("--reason", default=None, metavar="TEXT",
                        help="why: sent with each call and written into the node's audit "
                        "trail (memnode --reason 'ticket 4711' export) [env MEMNODE_REASON]")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def client_command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--addr", default=default_addr(),
                       help="node address HOST:PORT [env MEMNODE_ADDR, default 127.0.0.1:7420]")
        p.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
        p.add_argument("--token", default=None,
                       help="bearer token of the node (`memnode token issue`) [env "
                       "MEMNODE_TOKEN]")
        p.add_argument("--tls-ca", default=None, metavar="PEM",
                       help="CA certificate of a node serving TLS (--tls-cert) [env "
                       "MEMNODE_TLS_CA]")
        return p

    p = client_command("remember", "store a memory; prints its id")
    p.set_defaults(func=cmd_remember)
    p.add_argument("text")
    p.add_argument("--meta", action="append", metavar="K=V", help="metadata (repeatable)")
    p.add_argument("--privacy", default="team",
                   choices=["ephemeral", "private", "team", "public"])
    p.add_argument("--keep-pii", action="store_true", help="do not redact PII")
    p.add_argument("--ttl", type=int, help="seconds, for --privacy ephemeral")

    p = client_command("recall", "find the memories nearest in meaning to QUERY")
    p.set_defaults(func=cmd_recall)
    p.add_argument("query")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--scope", choices=["local", "mesh"], default="local")
    p.add_argument("--where", action="append", metavar="K=V", help="metadata equality")
    p.add_argument("--json", action="store_true")

    p = client_command("get", "show one memory")
    p.set_defaults(func=cmd_get)
    p.add_argument("id")
    p.add_argument("--json", action="store_true", help="one line")

    p = client_command("update", "change a memory's metadata")
    p.set_defaults(func=cmd_update)
    p.add_argument("id")
    p.add_argument("--meta", action="append", metavar="K=V")
    p.add_argument("--remove", action="append", metavar="K")

    p = client_command("forget", "forget a memory, or every own memory matching --where "
                       "(erasure by subject), here and on every replica")
    p.set_defaults(func=cmd_forget)
    p.add_argument("id", nargs="?")
    p.add_argument("--where", action="append", metavar="K=V",
                   help="metadata equality, as in recall (repeatable; all must match)")

    p = client_command("status", "the node's identity, model, counts, versions and peers")
    p.set_defaults(func=cmd_status)
    p.add_argument("--json", action="store_true")

    p = client_command("import", "bulk-store memories from a JSONL file (- for stdin)")
    p.set_defaults(func=cmd_import)
    p.add_argument("file")
    p.add_argument("--batch", type=int, default=256, help="memories per atomic batch")
    p.add_argument("--ids", action="store_true", help="print the new ids")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = client_command("export", "export this node's own memories as JSONL (GDPR export)")
    p.set_defaults(func=cmd_export)
    p.add_argument("--out", default="-")
    p.add_argument("--scope", choices=["local", "mesh"], default="local")
    p.add_argument("--where", action="append", metavar="K=V",
                   help="only memories whose metadata equals these (as in recall)")

    add_watch_command(client_command, _client)
    add_admin_commands(sub, with_serve_flags)
    add_token_commands(sub)
    add_audit_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = [a for a in argv if not a.startswith("-")]
    parser = build_parser(with_serve_flags=bool({"serve", "sidecar"} & set(commands[:2])))
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        code: int = args.func(args)
        return code
    except UsageError as exc:
        print(f"memnode: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except InvalidArgument as exc:
        print(f"memnode: invalid argument: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except NotFound as exc:
        print(f"memnode: not found: {exc}", file=sys.stderr)
        return EXIT_NOT_FOUND
    except Unavailable as exc:
        print(f"memnode: unavailable: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except MemnodeError as exc:
        print(f"memnode: {exc.kind.replace('_', ' ')}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

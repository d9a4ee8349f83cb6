"""``memnode token issue / list / revoke``: the client tokens of a node, on its data dir.

They work on the files (:mod:`memnode.storage.tokenstore`), while the node runs or not:
whoever can read the data directory administers its tokens. A revocation applies to the
node's next call.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from memnode.errors import UsageError


def _store(args: argparse.Namespace) -> Any:
    from memnode.storage.tokenstore import TokenStore

    if args.data_dir:
        return TokenStore(Path(args.data_dir))
    from memnode.config import default_data_dir

    return TokenStore(Path(os.environ.get("MEMNODE_DATA_DIR") or default_data_dir()))


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _when(ms: int) -> str:
    if not ms:
        return "never"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cmd_token_issue(args: argparse.Namespace) -> int:
    from memnode.node.identity import KEY_FILE
    from memnode.node.tokens import parse_scopes

    try:
        scopes = parse_scopes(args.scope)
    except ValueError as exc:
        raise UsageError(f"--scope: {exc}") from None
    if args.ttl is not None and args.ttl <= 0:
        raise UsageError("--ttl must be a positive number of seconds")
    store = _store(args)
    if not (store.dir / KEY_FILE).exists():
        print(f"note: {store.dir} holds no node yet; the node started on it will accept "
              "this token", file=sys.stderr)
    token, record = store.issue(scopes, _now_ms(), args.ttl or 0, args.name or "")
    print(token)
    print(f"token {record.id} ({','.join(record.scopes)}; expires {_when(record.expires_ms)}) "
          f"for the node in {store.dir}; it is shown only now. Revoke it with: memnode "
          f"token revoke --data-dir {store.dir} {record.id}", file=sys.stderr)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    records = _store(args).records()
    now = _now_ms()
    if args.json:
        print(json.dumps([r.__dict__ for r in records]))
        return 0
    for r in records:
        state = ("revoked " + _when(r.revoked_ms) if r.revoked_ms else
                 "expired" if r.expires_ms and r.expires_ms <= now else "live")
        print(f"{r.id}  {','.join(r.scopes):<16} {state:<28} expires {_when(r.expires_ms):<20}"
              f"  {r.name}")
    if not records:
        print("no tokens", file=sys.stderr)
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    record = _store(args).revoke(args.id, _now_ms())
    print(f"token {record.id} revoked at {_when(record.revoked_ms)}; the node refuses it "
          "from its next call", file=sys.stderr)
    return 0


def add_token_commands(sub: Any) -> None:
    tp = sub.add_parser("token", help="issue, list and revoke a node's client tokens",
                        description="bearer tokens for clients of a node (--client-auth "
                        "token), kept in its data directory")
    tsub = tp.add_subparsers(dest="token_command", required=True, metavar="ACTION")

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        p = tsub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--data-dir", default=None,
                       help="the node's data directory [env MEMNODE_DATA_DIR]")
        return p

    p = action("issue", "issue a token; prints it (only this once)")
    p.set_defaults(func=cmd_token_issue)
    p.add_argument("--scope", action="append", required=True, metavar="SCOPE",
                   help="read, write, admin (comma-separated or repeated; admin implies "
                   "all)")
    p.add_argument("--ttl", type=float, metavar="SECONDS", help="expire after SECONDS")
    p.add_argument("--name", help="who or what the token is for (shown by list)")
    p = action("list", "the node's tokens (ids, scopes, state; never the tokens)")
    p.set_defaults(func=cmd_token_list)
    p.add_argument("--json", action="store_true")
    p = action("revoke", "revoke a token: the node refuses it from its next call")
    p.set_defaults(func=cmd_token_revoke)
    p.add_argument("id", metavar="ID")

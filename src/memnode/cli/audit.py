"""``memnode audit``: read and verify a node's audit trail, on its data dir.

It reads the files (:mod:`memnode.storage.audit_format`) without the node's lock, so it
works while the node runs. Exit 0 when the chain is intact, 1 with the place of the first
break (``audit/000000000001.jsonl:17: ...``) otherwise, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from memnode.errors import UsageError

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SHOWN = ("ts", "n", "who", "token_name", "method", "code", "reason", "hash", "prev", "peer")


def parse_since(value: str, now_ms: int) -> int:
    """``30m``, ``2h``, ``7d`` ago; an ISO 8601 time (UTC unless it says); or epoch ms."""
    value = value.strip()
    relative = _RELATIVE.match(value)
    if relative:
        return now_ms - int(float(relative.group(1)) * _UNIT[relative.group(2)] * 1000)
    if value.isdigit():
        return int(value)
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since: expected 30m, 2h, 7d, an ISO time or epoch ms; got "
                         f"{value!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)


def _when(ms: int) -> str:
    stamp = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def line_of(entry: dict[str, Any]) -> str:
    who = str(entry.get("who", ""))
    if entry.get("token_name"):
        who += f" ({entry['token_name']})"
    rest = " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in sorted(entry.items())
                    if k not in _SHOWN)
    reason = f"  reason={json.dumps(entry['reason'], ensure_ascii=False)}" \
        if entry.get("reason") else ""
    return (f"{_when(int(entry.get('ts', 0)))}  #{entry.get('n')}  {who or '-'}  "
            f"{entry.get('method')}  {entry.get('code', '')}  {rest}{reason}").rstrip()


def cmd_audit(args: argparse.Namespace) -> int:
    from memnode.config import default_data_dir
    from memnode.storage.audit_format import AUDIT_DIR, verify

    data_dir = Path(args.data_dir or os.environ.get("MEMNODE_DATA_DIR") or default_data_dir())
    directory = data_dir / AUDIT_DIR
    if not directory.is_dir():
        raise UsageError(f"{data_dir} has no audit trail ({directory} does not exist)")
    since = parse_since(args.since, time.time_ns() // 1_000_000) if args.since else None

    def show(entry: dict[str, Any]) -> None:
        if args.verify or (since is not None and int(entry.get("ts", 0)) < since):
            return
        print(json.dumps(entry, ensure_ascii=False, sort_keys=True) if args.json
              else line_of(entry))

    verdict = verify(directory, show)
    sys.stdout.flush()
    if verdict.broken is not None:
        where = f" (entry {verdict.broken.n})" if verdict.broken.n else ""
        print(f"memnode audit: chain broken at {verdict.broken}{where}; the {verdict.entries} "
              "entries before it are intact", file=sys.stderr)
        return 1
    start = (f"from anchor at entry {verdict.first_n}" if verdict.anchor
             else "from the first entry")
    print(f"audit trail intact: {verdict.entries} entries in {verdict.segments} segments "
          f"({start}), head {verdict.head}", file=sys.stderr)
    return 0


def add_audit_command(sub: Any) -> None:
    p = sub.add_parser("audit", help="read and verify the node's audit trail (who, when, "
                       "what, why of every client call)",
                       description="Read and verify the node's audit trail. Works on a "
                       "running node's data dir. Exit 0 if the hash chain is intact, 1 with "
                       "the first break's file and line otherwise.")
    p.set_defaults(func=cmd_audit)
    p.add_argument("--data-dir", default=None,
                   help="the node's data dir [env MEMNODE_DATA_DIR]")
    p.add_argument("--since", default=None, metavar="T",
                   help="show entries from T on: 30m, 2h, 7d ago, an ISO time, or epoch ms "
                   "(the whole chain is verified either way)")
    p.add_argument("--verify", action="store_true",
                   help="only verify: print the verdict, not the entries")
    p.add_argument("--json", action="store_true", help="entries as JSON lines, as stored")

"""``memnode watch``: follow the node's memory stream, one line per change.

Plain lines: ``KIND ID [privacy, local|from ORIGIN] @ORIGIN:SEQ`` then the text. With
``--json``: one object per line (kind, origin, seq and the memory's fields). On Ctrl-C,
when the node closes the stream, and when it fails, the version vector reached is
printed to stderr, ready for ``--from``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from memnode.client import Client
from memnode.errors import MemnodeError
from memnode.watch import Change, parse_version_vector


def _line(change: Change) -> str:
    m = change.memory
    where = "local" if m.local else f"from {m.origin}"
    head = f"{change.kind:<6}  {m.id}  [{m.privacy}, {where}]  @{change.origin}:{change.seq}"
    if change.kind == "forget":
        return head
    meta = " ".join(f"{k}={v}" for k, v in sorted(m.metadata.items()))
    text = m.text or "(text stays on its origin node)"
    return head + f"\n        {text}" + (f"\n        {meta}" if meta else "")


def cmd_watch(args: argparse.Namespace, client: Client) -> int:
    start = parse_version_vector(args.from_vv) if args.from_vv else {}
    with client, client.watch(scope=args.scope, from_version_vector=start) as watch:
        try:
            for change in watch:
                print(json.dumps(change.to_json(), ensure_ascii=False) if args.json
                      else _line(change), flush=True)
        except KeyboardInterrupt:
            print(f"resume with --from '{json.dumps(watch.version_vector)}'",
                  file=sys.stderr)
            return 130
        except MemnodeError:  # the node went away, or refused: the CLI says which
            if watch.version_vector:
                print(f"resume with --from '{json.dumps(watch.version_vector)}'",
                      file=sys.stderr)
            raise
    print("the node closed the stream; resume with --from "
          f"'{json.dumps(watch.version_vector)}'", file=sys.stderr)
    return 0


def add_watch_command(client_command: Callable[[str, str], argparse.ArgumentParser],
                      client: Callable[[argparse.Namespace], Client]) -> None:
    p = client_command("watch", "follow new, updated and forgotten memories as they come")
    p.set_defaults(func=lambda args: cmd_watch(args, client(args)))
    p.add_argument("--scope", choices=["local", "mesh"], default="local",
                   help="local: own memories (with text); mesh: replicas too (no text)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--from", dest="from_vv", metavar="VV", default="",
                   help="resume after this version vector: a JSON object "
                   "{\"origin\": seq} or ORIGIN=SEQ[,ORIGIN=SEQ...]")

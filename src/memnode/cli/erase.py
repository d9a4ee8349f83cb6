"""``memnode federation erase``: a CA-signed erasure order for a lost origin's memories."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from memnode.errors import UsageError


def cmd_federation_erase(args: argparse.Namespace) -> int:
    from federation.errors import CredentialsError
    from federation.io.erasesign import erase_in_federation
    from federation.io.pki import SIGNED_ERASURE_FILE

    try:
        order, signed = erase_in_federation(args.ca_dir, args.origin, args.id or ())
    except CredentialsError as exc:
        raise UsageError(str(exc)) from None
    what = f"{len(order.ids)} memories" if order.ids else "every memory"
    print(f"erasure order {order.serial}: {what} of origin {order.origin}; signed in "
          f"{args.ca_dir / SIGNED_ERASURE_FILE} (version {signed.version}, "
          f"{len(signed.orders)} orders). Copy that file into any one member's credentials "
          "directory: members gossip it, erase those replicas and refuse them from then on",
          file=sys.stderr)
    return 0


def add_erase_command(fsub: Any) -> None:
    p = fsub.add_parser("erase", help="sign an erasure order for an origin's memories "
                        "(every member erases its replicas and refuses them from then on)")
    p.set_defaults(func=cmd_federation_erase)
    p.add_argument("--origin", required=True, metavar="NODE_ID", help="the origin's node id")
    p.add_argument("--id", action="append", metavar="MEMORY_ID",
                   help="only this memory of the origin (repeatable; none: every memory)")
    p.add_argument("--ca-dir", type=Path, required=True, metavar="DIR",
                   help="the federation directory (holding ca.key)")

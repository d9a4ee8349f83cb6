"""``memnode federation key``: rotate the federation's metadata key without downtime
(:mod:`federation.io.keyring`; the runbook is in docs/OPERATIONS.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from memnode.errors import UsageError

_NEXT = {
    "add": "copy {file} to every member's credentials directory (nodes re-read it within "
           "seconds; memnode_metadata_keys_held shows it), then: memnode federation key use "
           "{dir} {new}",
    "use": "copy {file} to every member: each node re-publishes its own TEAM metadata under "
           "key {current} (memnode_metadata_republish_pending falls to 0); once every node "
           "shows 0 and the mesh has converged: memnode federation key retire {dir} ID",
    "retire": "copy {file} to every member",
    "list": "",
}


def cmd_federation_key(args: argparse.Namespace) -> int:
    from federation.errors import MetadataKeyError
    from federation.io.keyring import MetadataKeys
    from federation.io.pki import METADATA_KEY

    path = Path(args.dir) / METADATA_KEY if Path(args.dir).is_dir() else Path(args.dir)
    try:
        keys = MetadataKeys.load(path, {})
        if args.action != "list" and args.id is None and args.action != "add":
            raise UsageError(f"memnode federation key {args.action} needs a key ID "
                             f"(held: {', '.join(map(str, keys.ids))})")
        if args.action == "add":
            keys = keys.add()
        elif args.action == "use":
            keys = keys.use(args.id)
        elif args.action == "retire":
            keys = keys.retire(args.id)
        if args.action != "list":
            keys.write(path)
    except MetadataKeyError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    for key_id, fingerprint in keys.fingerprints().items():
        print(f"{key_id}\t{fingerprint}" + ("\tcurrent" if key_id == keys.current_id else ""))
    hint = _NEXT[args.action].format(file=path, dir=args.dir, new=max(keys.ids),
                                     current=keys.current_id)
    if hint:
        print(hint, file=sys.stderr)
    return 0


def add_key_commands(fsub: Any) -> None:
    p = fsub.add_parser("key", help="rotate the metadata key: add, use, retire, list",
                        description="rotate the federation's metadata key without downtime: "
                        "add a new key, use it for new writes (nodes re-publish their TEAM "
                        "metadata under it), retire the old one (docs/OPERATIONS.md)")
    p.set_defaults(func=cmd_federation_key)
    p.add_argument("action", choices=("add", "use", "retire", "list"))
    p.add_argument("dir", type=Path, metavar="DIR",
                   help="the federation directory (its metadata.key), or a key file")
    p.add_argument("id", type=int, nargs="?", metavar="ID", help="the key id (use, retire)")

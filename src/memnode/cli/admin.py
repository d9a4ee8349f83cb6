"""The ``memnode`` commands that run or administer a node (the CLI's client commands are
in memnode.cli.main): serve, sidecar, compact, federation init / issue / deny / erase. Heavy imports
happen inside each command."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from memnode.cli.erase import add_erase_command
from memnode.cli.rotation import add_key_commands
from memnode.errors import UsageError


def _sidecar_config(args: argparse.Namespace) -> Any:
    from federation.io.sidecar_config import SidecarConfig
    from memnode.config import config_from_args, core_overrides

    preset = SidecarConfig(preset=args.preset)
    config = config_from_args(SidecarConfig, args, "MEMNODE_", preset=preset)
    config = SidecarConfig.model_validate({**config.model_dump(), "core": core_overrides(args)})
    config.core_config()  # ConfigError (a ValueError) now, not when the sidecar starts
    return config


def _add_preset_argument(parser: argparse.ArgumentParser) -> None:
    from federation.config import DEFAULT_PRESET, PRESETS

    parser.add_argument("--preset", default=os.environ.get("MEMNODE_PRESET", DEFAULT_PRESET),
                        choices=PRESETS, help="local: a few nodes on one host (default); "
                        "lan: tens of nodes; kubernetes: pods (listen on all interfaces, "
                        "patient timers). Sets the defaults of the node and of the "
                        "replication core alike [env MEMNODE_PRESET]")


def cmd_compact(args: argparse.Namespace) -> int:
    from memnode.storage.compact import compact

    report = compact(Path(args.data_dir))
    print(f"compacted {args.data_dir}: {report.local} own memories, {report.replicas} "
          f"replicas; {report.bytes_before} -> {report.bytes_after} bytes", file=sys.stderr)
    return 0


def _bar(total: int | None, unit: str, quiet: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, unit_scale=True, file=sys.stderr,
                disable=quiet or None)


def cmd_backup(args: argparse.Namespace) -> int:
    """Online through a running node (--addr), or offline from a stopped node's
    --data-dir (same format)."""
    import time

    from memnode.storage import backup

    out = Path(args.out_dir)
    started = time.perf_counter()
    try:
        if args.data_dir:
            manifest = _offline_backup(Path(args.data_dir), out, args.master_key_file)
        else:
            from memnode.client import Client

            with Client(args.addr, timeout=args.timeout, token=args.token,
                        tls_ca=args.tls_ca, reason=args.reason) as client, \
                    _bar(None, "B", args.quiet) as bar:
                manifest = client.backup(out, progress=bar.update)
        backup.verify(out)
    except backup.BackupError as exc:
        raise UsageError(str(exc)) from None
    counts = manifest["counts"]
    print(f"backup of node {manifest['node_id']} in {out}: {counts['own_memories']} own "
          f"memories, {counts['events']} events, own seq "
          f"{manifest['version_vector'].get(manifest['node_id'], 0)}; writes paused "
          f"{manifest['snapshot_seconds']:.2f} s, {time.perf_counter() - started:.2f} s in "
          "all. It holds the node's private key: store it as secretly as the node's disk.",
          file=sys.stderr)
    return 0


def _offline_backup(data_dir: Path, out: Path, master_key_file: Path | None = None
                    ) -> dict[str, Any]:
    from memnode._version import __version__
    from memnode.errors import DataDirError
    from memnode.storage import backup
    from memnode.storage.atrest import open_atrest
    from memnode.storage.chroma import ChromaStore
    from memnode.storage.eventlog import LOG_FILE, EventLog
    from memnode.storage.lock import DataDirLock

    if not (data_dir / LOG_FILE).is_file():
        raise UsageError(f"{data_dir} holds no node's log")
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise UsageError(f"{out} is not empty")
    try:
        with DataDirLock(data_dir):
            sealer = open_atrest(data_dir, master_key_file, os.environ, clear_ok=True)
            log = EventLog.open(data_dir, sealer=sealer)
            try:
                dim = int(str(log.meta("model")).split("/")[-2])
                snapshot = backup.take_snapshot(log, ChromaStore(data_dir, dim, sealer), out)
            finally:
                log.close()
    except DataDirError as exc:
        raise UsageError(f"{exc}; back a running node up through it: memnode backup "
                         "OUT_DIR --addr HOST:PORT") from None
    metadata_key = data_dir / backup.METADATA_KEY
    return backup.finish(out, data_dir / backup.IDENTITY,
                         metadata_key if metadata_key.is_file() else None, snapshot,
                         f"memnode {__version__}, offline")


def cmd_restore(args: argparse.Namespace) -> int:
    from memnode.storage import backup

    try:
        manifest = backup.read_manifest(Path(args.backup))
        with _bar(int(manifest["counts"]["own_memories"]), "entry", args.quiet) as bar:
            report = backup.restore(Path(args.backup), Path(args.data_dir), force=args.force,
                                    progress=bar.update, master_key_file=args.master_key_file)
    except backup.BackupError as exc:
        raise UsageError(str(exc)) from None
    if report.moved_aside is not None:
        print(f"the previous contents of {args.data_dir} are in {report.moved_aside}",
              file=sys.stderr)
    key = Path(args.data_dir) / backup.METADATA_KEY
    print(f"restored node {report.node_id} into {args.data_dir} in {report.seconds:.1f} s: "
          f"{report.own_memories} own memories, {report.replicas} replicas.", file=sys.stderr)
    if key.is_file():
        print(f"its metadata key is in {key} (--metadata-key-file), unless --federation "
              "gives it", file=sys.stderr)
    print("start it with its peers: until one tells it how far its own seq went it "
          "refuses writes (or --restore-without-peers for a node that has none)",
          file=sys.stderr)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from memnode.cli.heapscrub import reexec_scrubbed
    from memnode.config import NodeConfig, config_from_args

    try:
        preset = NodeConfig.preset(args.preset)
        config = config_from_args(NodeConfig, args, "MEMNODE_", preset=preset)
        sidecar = _sidecar_config(args)
        if config.chroma == "inline":  # Chroma writes files from this process's heap
            reexec_scrubbed()  # configuration errors first, then once more scrubbed
        from memnode.api.server import serve

        return serve(config, sidecar)
    except ValueError as exc:  # bad configuration or credentials (CredentialsError)
        raise UsageError(str(exc)) from None


def cmd_sidecar(args: argparse.Namespace) -> int:
    from memnode.api.server import serve_sidecar

    try:
        config = _sidecar_config(args)
        return serve_sidecar(args.node, config, args.metrics_listen,
                             health_listen=args.health_listen)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def cmd_federation_init(args: argparse.Namespace) -> int:
    from federation.errors import CredentialsError
    from federation.io.pki import init_federation

    try:
        paths = init_federation(args.dir, name=args.name, days=args.days)
    except CredentialsError as exc:
        raise UsageError(str(exc)) from None
    print(f"federation {paths.federation_id} created in {paths.dir}")
    print(f"keep {paths.ca_key.name} and {paths.metadata_key.name} secret; issue node "
          f"credentials with: memnode federation issue {paths.dir} --name NODE --out DIR",
          file=sys.stderr)
    return 0


def cmd_federation_issue(args: argparse.Namespace) -> int:
    from federation.errors import CredentialsError
    from federation.io.pki import issue_node

    try:
        out = issue_node(args.dir, args.name, args.out, dns=args.dns or (), ips=args.ip or (),
                         days=args.days, renew=args.renew)
    except CredentialsError as exc:
        raise UsageError(str(exc)) from None
    print(f"credentials of {args.name} written to {out}")
    print(f"a node running with --federation {out} serves them to new connections within "
          "seconds" if args.renew else f"start the node with --federation {out}",
          file=sys.stderr)
    return 0


def cmd_federation_deny(args: argparse.Namespace) -> int:
    from federation.errors import CredentialsError
    from federation.io.denylist import add_to_deny_list
    from federation.io.pki import CA_KEY, DENY_FILE, SIGNED_DENY_FILE

    try:
        added = add_to_deny_list(args.dir, args.node_id)
    except CredentialsError as exc:
        raise UsageError(str(exc)) from None
    state = "denied" if added else "was already denied"
    if (args.dir / CA_KEY).exists():
        print(f"{args.node_id} {state} in {args.dir / SIGNED_DENY_FILE} (signed by the "
              f"federation CA); copy that file into any one member's credentials directory: "
              f"members gossip it to each other within seconds", file=sys.stderr)
    else:
        print(f"{args.node_id} {state} in {args.dir / DENY_FILE}: this node alone enforces "
              f"it (unsigned, not gossiped); deny on the federation directory (the one "
              f"holding {CA_KEY}) to reach every member", file=sys.stderr)
    return 0


def cmd_mcp(args: argparse.Namespace) -> int:
    from memnode.integrations.mcp_server import main as mcp_main

    return mcp_main(list(args.mcp_args))


def add_admin_commands(sub: Any, with_serve_flags: bool) -> None:
    """Add the admin commands to the ``memnode`` parser's subcommands. The flags of
    ``serve`` and ``sidecar`` come from their config objects (pydantic is imported only
    when one of them runs)."""
    p = sub.add_parser("mcp", add_help=False, prefix_chars="\0",
                       help="an MCP server for agents over this node (stdio, or --http)",
                       description="memnode mcp [--addr ADDR] [--token T] [--http HOST:PORT]")
    p.add_argument("mcp_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_mcp)
    fp = sub.add_parser("federation", help="create a federation and its members' credentials",
                        description="create a federation (CA and metadata key), issue node "
                        "certificates for mutual TLS, deny members and erase the memories of "
                        "a lost origin")
    fsub = fp.add_subparsers(dest="federation_command", required=True, metavar="ACTION")
    p = fsub.add_parser("init", help="create a federation in DIR (CA, metadata key)")
    p.set_defaults(func=cmd_federation_init)
    p.add_argument("dir", type=Path, metavar="DIR")
    p.add_argument("--name", default="memnode federation", help="the CA's name")
    p.add_argument("--days", type=int, default=3650, help="validity of the CA")
    p = fsub.add_parser("issue", help="issue a node's credentials from federation DIR")
    p.set_defaults(func=cmd_federation_issue)
    p.add_argument("dir", type=Path, metavar="DIR")
    p.add_argument("--name", required=True, help="the node's name (certificate CN)")
    p.add_argument("--out", type=Path, required=True, help="new credentials directory")
    p.add_argument("--dns", action="append", metavar="NAME",
                   help="a DNS name the node is reached at (repeatable)")
    p.add_argument("--ip", action="append", metavar="ADDR",
                   help="an IP address the node is reached at (repeatable; "
                   "127.0.0.1 and ::1 are always included)")
    p.add_argument("--days", type=int, default=365, help="validity of the certificate")
    p.add_argument("--renew", action="store_true", help="replace node.key and node.crt of "
                   "the credentials in --out (a running node picks them up)")
    add_key_commands(fsub)
    p = fsub.add_parser("deny", help="deny a node id or certificate name: in a federation "
                        "DIR, a new CA-signed list that members gossip")
    p.set_defaults(func=cmd_federation_deny)
    p.add_argument("dir", type=Path, metavar="DIR")
    p.add_argument("node_id", metavar="NODE_ID")
    add_erase_command(fsub)

    serve = sub.add_parser("serve", help="run a node", description="run a node")
    serve.set_defaults(func=cmd_serve)
    _add_preset_argument(serve)
    cp = sub.add_parser("compact", help="rewrite a stopped node's stores so that "
                        "forgotten data leaves the disk", description="rewrite a stopped "
                        "node's stores so that forgotten data leaves the disk")
    cp.set_defaults(func=cmd_compact)
    cp.add_argument("--data-dir", required=True)

    bp = sub.add_parser("backup", help="an online, consistent backup of a node",
                        description="write a backup of a running node (through --addr) or "
                        "of a stopped one (--data-dir) into OUT_DIR, with a manifest")
    bp.set_defaults(func=cmd_backup)
    bp.add_argument("out_dir", metavar="OUT_DIR")
    bp.add_argument("--addr", default=os.environ.get("MEMNODE_ADDR", "127.0.0.1:7420"),
                    help="the running node [env MEMNODE_ADDR]")
    bp.add_argument("--data-dir", help="back up a stopped node's data directory instead")
    bp.add_argument("--timeout", type=float, default=30.0)
    bp.add_argument("--token", default=None,
                    help="a token with scope admin (`memnode token issue`) [env MEMNODE_TOKEN]")
    bp.add_argument("--tls-ca", default=None, metavar="PEM",
                    help="CA certificate of a node serving TLS [env MEMNODE_TLS_CA]")
    bp.add_argument("--quiet", action="store_true", help="no progress bar")
    bp.add_argument("--master-key-file", type=Path, default=None, help="with --data-dir: "
                    "the store's master key, when not in it (else $MEMNODE_MASTER_KEY)")
    rp = sub.add_parser("restore", help="verify a backup and lay out a data directory",
                        description="verify BACKUP's manifest and checksums, then lay out "
                        "--data-dir from it (Chroma rebuilt from the log)")
    rp.set_defaults(func=cmd_restore)
    rp.add_argument("backup", metavar="BACKUP")
    rp.add_argument("--data-dir", required=True)
    rp.add_argument("--force", action="store_true",
                    help="move a non-empty --data-dir aside (DIR.before-restore-TIME) first")
    rp.add_argument("--quiet", action="store_true", help="no progress bar")
    rp.add_argument("--master-key-file", type=Path, default=None,
                    help="the store's master key, when the backup holds none (else "
                    "$MEMNODE_MASTER_KEY; a backup from before encryption gets a new one)")

    sp = sub.add_parser("sidecar", help="run the federation sidecar next to a node",
                        description="run the federation sidecar next to a node "
                        "(reached on its node-local Replica API)")
    sp.set_defaults(func=cmd_sidecar)
    sp.add_argument("--node", default=os.environ.get("MEMNODE_NODE", "127.0.0.1:7421"),
                    help="the node's Replica API HOST:PORT or unix:PATH [env MEMNODE_NODE]")
    sp.add_argument("--metrics-listen", default=os.environ.get("MEMNODE_METRICS_LISTEN", ""),
                    help="HOST:PORT for the sidecar's Prometheus /metrics")
    sp.add_argument("--health-listen", default=os.environ.get("MEMNODE_HEALTH_LISTEN", ""),
                    help="HOST:PORT for the sidecar's own gRPC health service (SERVING "
                    "while it reaches its node and replicates) [env MEMNODE_HEALTH_LISTEN]")
    _add_preset_argument(sp)
    if with_serve_flags:
        from federation.io.sidecar_config import SidecarConfig
        from memnode.config import NodeConfig, add_config_arguments, add_core_arguments

        add_config_arguments(serve, NodeConfig, "MEMNODE_")
        add_config_arguments(serve, SidecarConfig, "MEMNODE_", skip=("preset", "core"))
        add_core_arguments(serve)
        add_config_arguments(sp, SidecarConfig, "MEMNODE_", skip=("preset", "core"))
        add_core_arguments(sp)

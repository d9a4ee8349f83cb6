"""Helpers for the infra tests: the manifests read as data, the containers' argv and env as
the kubelet would give them, and the one place that imports the project's own code."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import yaml

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
DOCKER = INFRA / "docker"
K8S = INFRA / "k8s"
VENV_BIN = Path(sys.executable).parent

# A pod of the StatefulSet, as the downward API would describe it.
POD = {"metadata.name": "memnode-1", "metadata.namespace": "memtest"}

def memnode_api() -> SimpleNamespace:
    """The only import of the project's code in tests/infra (module paths may move)."""
    from federation.io.sidecar_config import SidecarConfig
    from federation.io.tls import load_node_credentials
    from memnode.api.server import with_federation_key
    from memnode.cli.main import build_parser
    from memnode.config import NodeConfig, config_from_args

    return SimpleNamespace(build_parser=build_parser, NodeConfig=NodeConfig,
                           SidecarConfig=SidecarConfig, config_from_args=config_from_args,
                           with_federation_key=with_federation_key,
                           load_node_credentials=load_node_credentials)


# -- files ------------------------------------------------------------------------------


def load_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def kustomization() -> dict[str, Any]:
    return load_docs(K8S / "kustomization.yaml")[0]


def manifests() -> dict[str, list[dict[str, Any]]]:
    """Every resource file the kustomization lists, parsed."""
    return {name: load_docs(K8S / name) for name in kustomization()["resources"]}


def resource(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for docs in manifests().values() for d in docs
             if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''} in infra/k8s, found {len(found)}"
    return found[0]


def tool(name: str) -> str | None:
    """A tool from the venv (the `infra` extra) or PATH."""
    path = VENV_BIN / name
    return str(path) if path.exists() else shutil.which(name)


def memnode_wrapper(bin_dir: Path) -> Path:
    """A `memnode` executable in ``bin_dir`` that runs this checkout's CLI, for scripts."""
    from helpers import memnode_cmd

    bin_dir.mkdir(parents=True, exist_ok=True)
    wrapper = bin_dir / "memnode"
    wrapper.write_text(f'#!/bin/sh\nexec {shlex.join(memnode_cmd())} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


# -- the StatefulSet's containers as the kubelet runs them ------------------------------

_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand(value: str, env: dict[str, str]) -> str:
    """The kubelet's $(VAR) expansion ($$ is a literal $; unknown references stay)."""
    return _VAR_REF.sub(lambda m: "$" if m.group(0) == "$$"
                        else env.get(m.group(1), m.group(0)), value)


def statefulset() -> dict[str, Any]:
    return resource("StatefulSet")


def pod_spec() -> dict[str, Any]:
    spec: dict[str, Any] = statefulset()["spec"]["template"]["spec"]
    return spec


def container(name: str) -> dict[str, Any]:
    spec = pod_spec()
    found = [c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == name]
    assert len(found) == 1, f"no container {name!r} in the StatefulSet"
    return found[0]


def container_env(c: dict[str, Any], pod: dict[str, str] = POD) -> dict[str, str]:
    """The container's environment, in order, with downward-API fields of ``pod``."""
    env: dict[str, str] = {}
    for item in c.get("env", []):
        if "value" in item:
            env[item["name"]] = expand(str(item["value"]), env)
        else:
            env[item["name"]] = pod[item["valueFrom"]["fieldRef"]["fieldPath"]]
    return env


def container_argv(c: dict[str, Any], pod: dict[str, str] = POD) -> list[str]:
    """The memnode arguments of a container that runs the image's entrypoint."""
    assert "command" not in c, f"{c['name']} overrides the image's `memnode` entrypoint"
    env = container_env(c, pod)
    return [expand(str(a), env) for a in c.get("args", [])]


@contextlib.contextmanager
def environ(env: dict[str, str]) -> Iterator[None]:
    """os.environ as inside the container: no MEMNODE_* from this process, the container's."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MEMNODE_")}
    with mock.patch.dict(os.environ, {**clean, **env}, clear=True):
        yield


def subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            sub: argparse.ArgumentParser = action.choices[command]
            return sub
    raise AssertionError("the memnode parser has no subcommands")


def option_strings(parser: argparse.ArgumentParser) -> set[str]:
    return {s for action in parser._actions for s in action.option_strings}


def dests(parser: argparse.ArgumentParser) -> set[str]:
    return {action.dest for action in parser._actions}


def parse(argv: list[str], env: dict[str, str]) -> argparse.Namespace:
    """Parse ``argv`` with the CLI's own parser, built in the container's environment
    (some defaults come from env vars); a usage error fails the test with its message."""
    api = memnode_api()
    with environ(env):
        parser = api.build_parser(with_serve_flags=True)
        stderr = io.StringIO()
        try:
            with contextlib.redirect_stderr(stderr):
                args: argparse.Namespace = parser.parse_args(argv)
        except SystemExit:
            raise AssertionError(f"memnode {shlex.join(argv)}: {stderr.getvalue()}") from None
    return args


def node_config(argv: list[str], env: dict[str, str]) -> tuple[Any, Any]:
    """What `memnode serve ARGV` would run with: (NodeConfig with its metadata key file,
    SidecarConfig), resolved by the project's own code (flags > env > preset)."""
    api = memnode_api()
    args = parse(argv, env)
    assert args.command == "serve"
    with environ(env):
        node = api.config_from_args(api.NodeConfig, args, "MEMNODE_",
                                    preset=api.NodeConfig.preset(args.preset))
        side = api.config_from_args(api.SidecarConfig, args, "MEMNODE_",
                                    preset=api.SidecarConfig(preset=args.preset))
    return api.with_federation_key(node, side), side


def sidecar_config(argv: list[str], env: dict[str, str]) -> tuple[argparse.Namespace, Any]:
    api = memnode_api()
    args = parse(argv, env)
    assert args.command == "sidecar"
    with environ(env):
        config = api.config_from_args(api.SidecarConfig, args, "MEMNODE_",
                                      preset=api.SidecarConfig(preset=args.preset))
    return args, config


def port_of(hostport: str) -> int:
    return int(hostport.rpartition(":")[2])


# -- Secrets, as make-secrets.sh makes them and the kubelet mounts them -----------------


def make_secrets(tmp: Path, *args: str, kubectl: str | None = None,
                 namespace: str = "memtest") -> tuple[Path, list[dict[str, Any]], str]:
    """A fresh federation in tmp/fed, then infra/k8s/make-secrets.sh on it. Returns the
    federation dir, the Secrets printed, and what the script wrote on stderr."""
    bin_dir = tmp / "bin"
    memnode = memnode_wrapper(bin_dir)
    fed = tmp / "fed"
    subprocess.run([str(memnode), "federation", "init", str(fed)], check=True,
                   capture_output=True, timeout=60)
    env = {**os.environ, "MEMNODE": str(memnode), "KUBECTL": kubectl or str(tmp / "no-kubectl")}
    done = subprocess.run(["bash", str(K8S / "make-secrets.sh"), "--namespace", namespace,
                           *args, str(fed)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return fed, [d for d in yaml.safe_load_all(done.stdout) if d], done.stderr


def mount_secret(secret: dict[str, Any], path: Path, default_mode: int) -> None:
    """Lay out a Secret as a kubelet secret volume with fsGroup set: each key a file, mode
    ``default_mode`` plus group read (what fsGroup ownership management adds)."""
    import base64

    path.mkdir(parents=True, exist_ok=True)
    for key, value in secret["data"].items():
        file = path / key
        file.write_bytes(base64.b64decode(value))
        file.chmod(default_mode | stat.S_IRGRP)

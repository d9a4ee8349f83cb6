"""One config story: one preset name and default for serve and sidecar, every field of
the replication core reachable as a flag and a MEMNODE_ env var, flags over env over
the preset."""

from __future__ import annotations

from dataclasses import fields

import pytest

from federation.config import DEFAULT_PRESET, FederationConfig, preset
from memnode.cli.admin import _sidecar_config
from memnode.cli.main import build_parser

CORE_FLAGS = [f.name for f in fields(FederationConfig)
              if f.name not in ("tick_ms", "insecure_skip_signature_verification")]


def _config(monkeypatch: pytest.MonkeyPatch, argv: list[str], env: dict[str, str]
            ) -> FederationConfig:
    for key in [k for k in __import__("os").environ if k.startswith("MEMNODE_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    args = build_parser().parse_args(argv)
    return _sidecar_config(args).core_config()  # type: ignore[no-any-return]


@pytest.mark.parametrize("command", ["serve", "sidecar"])
def test_both_commands_share_the_preset_and_its_default(
        monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    assert _config(monkeypatch, [command], {}) == preset(DEFAULT_PRESET)
    assert _config(monkeypatch, [command, "--preset", "kubernetes"], {}) == \
        preset("kubernetes")
    assert _config(monkeypatch, [command], {"MEMNODE_PRESET": "lan"}) == preset("lan")


@pytest.mark.parametrize("field", CORE_FLAGS)
def test_every_core_field_is_a_flag_and_an_env_var(
        monkeypatch: pytest.MonkeyPatch, field: str) -> None:
    base = getattr(preset(DEFAULT_PRESET), field)
    wanted = base + 7
    flag = "--" + field.replace("_", "-")
    env = {f"MEMNODE_{field.upper()}": str(wanted)}
    by_flag = _config(monkeypatch, ["sidecar", flag, str(wanted)], {})
    assert getattr(by_flag, field) == wanted
    assert getattr(_config(monkeypatch, ["serve"], env), field) == wanted
    # the flag wins over the env var
    other = _config(monkeypatch, ["serve", flag, str(wanted)], {env.popitem()[0]: "1"})
    assert getattr(other, field) == wanted


def test_a_bad_core_value_is_refused_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="--fanout.*not an integer"):
        _config(monkeypatch, ["sidecar", "--fanout", "many"], {})
    with pytest.raises(ValueError, match="suspect_after_ticks"):
        _config(monkeypatch, ["sidecar", "--suspect-after-ticks", "1"], {})

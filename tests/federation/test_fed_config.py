"""FederationConfig: presets are valid and differ only where they must."""

from __future__ import annotations

from dataclasses import fields

import pytest

from federation.config import FederationConfig
from federation.errors import ConfigError, FederationError

LIMITS = {
    "max_batch_events", "max_batch_bytes", "max_embedding_dim", "max_metadata_entries",
    "max_metadata_key_bytes", "max_metadata_value_bytes", "max_local_id_bytes",
    "max_event_bytes", "insecure_skip_signature_verification",
}


@pytest.mark.parametrize("preset", [FederationConfig.local, FederationConfig.lan,
                                    FederationConfig.kubernetes])
def test_presets_are_valid_and_agree_on_limits(preset: object) -> None:
    config = preset()  # type: ignore[operator]
    config.validate()
    default = FederationConfig()
    for name in LIMITS:
        assert getattr(config, name) == getattr(default, name), name
    assert config.insecure_skip_signature_verification is False


def test_every_field_is_documented() -> None:
    import inspect

    source = inspect.getsource(FederationConfig)
    for f in fields(FederationConfig):
        assert f.name in source
    # each tunable has a docstring right after it, or is one of the grouped limits
    undocumented = [
        f.name for f in fields(FederationConfig)
        if f'{f.name}: ' in source and '"""' not in source.split(f"{f.name}: ", 1)[1][:200]
    ]
    assert not undocumented, undocumented


@pytest.mark.parametrize(
    "overrides",
    [
        {"fanout": -1},
        {"tick_ms": 0},
        {"anti_entropy_interval_ticks": 0},
        {"suspect_after_ticks": 10, "dead_after_ticks": 10},
        {"max_batch_bytes": 1000},
        {"max_events_per_exchange": 10},
        {"fanout": 2.5},
        {"insecure_skip_signature_verification": "yes"},
        {"no_such_field": 1},
    ],
)
def test_bad_values_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as info:
        FederationConfig.lan(**overrides)
    assert isinstance(info.value, FederationError)


def test_overrides_apply_to_a_preset() -> None:
    config = FederationConfig.kubernetes(fanout=5)
    assert config.fanout == 5
    default = FederationConfig.kubernetes()
    assert config.anti_entropy_interval_ticks == default.anti_entropy_interval_ticks

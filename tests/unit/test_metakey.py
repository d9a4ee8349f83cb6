"""federation.io.metakey: key sources, key files, the typed keyed hash, the shared form."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.errors import MetadataKeyError
from federation.io.metakey import ENV_VAR, KEY_BYTES, MetadataKey
from memnode.node.domain import MetaValue, Privacy

KEY = bytes(range(32))
OTHER = bytes(range(1, 33))
HASH_FORM = re.compile(r"[A-Za-z0-9_-]{16}")

meta_values = st.one_of(
    st.text(max_size=50),
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
)


def identity(v: MetaValue) -> tuple[str, MetaValue]:
    """What an equality filter considers the same value: same type, equal value."""
    return (type(v).__name__, v)


@pytest.fixture
def umask0() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


# -- sources ------------------------------------------------------------------------


def test_no_file_no_env_is_the_development_key() -> None:
    key = MetadataKey.load(None, {})
    assert key.is_development
    assert key.describe() == "DEVELOPMENT DEFAULT (not secret)"
    assert key.hash_value("x") == MetadataKey.development().hash_value("x")


@pytest.mark.parametrize("value", ["", "   "])
def test_empty_env_means_unset(value: str) -> None:
    assert MetadataKey.load(None, {ENV_VAR: value}).is_development


def test_env_hex() -> None:
    key = MetadataKey.load(None, {ENV_VAR: f" {KEY.hex().upper()}\n"})
    assert not key.is_development
    assert key.describe() == f"env {ENV_VAR}"
    assert key.hash_value("a") == MetadataKey(KEY).hash_value("a")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (KEY.hex()[:-2], "expected 64 hex characters, got 62"),
        ("zz" * 32, "not valid hex"),
        (base64.b64encode(KEY).decode(), "expected 64 hex characters"),
    ],
)
def test_env_bad_material_is_rejected_without_echo(value: str, message: str) -> None:
    with pytest.raises(MetadataKeyError, match=message) as info:
        MetadataKey.load(None, {ENV_VAR: value})
    assert ENV_VAR in str(info.value)
    assert value not in str(info.value)


def test_file_wins_over_env(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_bytes(KEY)
    key = MetadataKey.load(path, {ENV_VAR: OTHER.hex()})
    assert key.describe() == f"file {path}"
    assert key.hash_value(1) == MetadataKey(KEY).hash_value(1)


@pytest.mark.parametrize(
    "content",
    [
        KEY,
        KEY.hex().encode(),
        (KEY.hex() + "\n").encode(),
        ("  " + KEY.hex().upper() + "\r\n").encode(),
        base64.b64encode(KEY) + b"\n",
        base64.urlsafe_b64encode(OTHER[:1] + KEY[1:]).rstrip(b"="),
    ],
    ids=["raw", "hex", "hex-newline", "hex-upper-spaces", "base64", "base64url-unpadded"],
)
def test_file_formats(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "key"
    path.write_bytes(content)
    loaded = MetadataKey.load(path, {})
    expected_bytes = OTHER[:1] + KEY[1:] if content.startswith(b"AQEC") else KEY
    assert not loaded.is_development
    assert loaded.hash_value("v") == MetadataKey(expected_bytes).hash_value("v")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (KEY[:31], "got 31 bytes"),
        (bytes(range(200, 232)) + b"\n", "got 33 bytes of binary"),
        (b"g" * 64, "not valid hex"),
        (b"correct horse battery staple 123", "text, not a key"),
        (base64.b64encode(KEY[:16]), "got 24 bytes"),
        (b"", "got 0 bytes"),
    ],
    ids=["short-raw", "raw-newline", "bad-hex", "passphrase", "base64-16", "empty"],
)
def test_file_bad_material(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "key"
    path.write_bytes(content)
    with pytest.raises(MetadataKeyError, match=message) as info:
        MetadataKey.load(path, {ENV_VAR: KEY.hex()})
    assert str(path) in str(info.value)
    if content.isascii() and content:
        assert content.decode() not in str(info.value)


@pytest.mark.parametrize("name", ["missing", "."], ids=["missing", "directory"])
def test_unreadable_file_does_not_fall_back(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    with pytest.raises(MetadataKeyError, match="cannot read"):
        MetadataKey.load(path, {ENV_VAR: KEY.hex()})


@pytest.mark.parametrize("material", [b"", KEY[:31], KEY + b"\0"])
def test_constructor_wants_32_bytes(material: bytes) -> None:
    with pytest.raises(MetadataKeyError, match=f"must be {KEY_BYTES} bytes"):
        MetadataKey(material)


# -- generate and write ---------------------------------------------------------------


def test_generated_keys_differ() -> None:
    a, b = MetadataKey.generate(), MetadataKey.generate()
    assert not a.is_development
    assert a.describe() == "generated"
    assert a.hash_value("same") != b.hash_value("same")
    assert a.fingerprint() != b.fingerprint()


def test_write_then_load_round_trip(tmp_path: Path, umask0: None) -> None:
    key = MetadataKey.generate()
    path = tmp_path / "metadata.key"
    key.write(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert re.fullmatch(r"[0-9a-f]{64}\n", path.read_text())
    loaded = MetadataKey.load(path, {})
    assert loaded.hash_value("x") == key.hash_value("x")
    assert loaded.fingerprint() == key.fingerprint()


def test_write_creates_private_without_chmod(
    tmp_path: Path, umask0: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def forbidden(*_: object) -> None:
        raise AssertionError("the file must be created 0600, not chmod-ed after")

    monkeypatch.setattr(os, "chmod", forbidden)
    monkeypatch.setattr(os, "fchmod", forbidden)
    path = tmp_path / "k"
    MetadataKey(KEY).write(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_write_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "k"
    MetadataKey(KEY).write(path)
    with pytest.raises(FileExistsError):
        MetadataKey(OTHER).write(path)
    assert path.read_text() == KEY.hex() + "\n"


def test_development_key_is_never_written(tmp_path: Path) -> None:
    path = tmp_path / "k"
    with pytest.raises(ValueError, match="development"):
        MetadataKey.development().write(path)
    assert not path.exists()


def test_repr_and_fingerprint_do_not_leak_the_key() -> None:
    key = MetadataKey(KEY)
    assert KEY.hex() not in repr(key)
    assert re.fullmatch(r"[0-9a-f]{8}", key.fingerprint())
    assert key.fingerprint() == MetadataKey(KEY).fingerprint()
    assert key.fingerprint() != MetadataKey(OTHER).fingerprint()
    assert key.fingerprint() in repr(key)


# -- hash_value -----------------------------------------------------------------------


def test_hash_format_is_pinned() -> None:
    """Every node of every version must agree: the format is part of the protocol."""
    key = MetadataKey(KEY)
    spec = hmac.new(KEY, b"memnode.metadata.v1\x00" + b"salice", hashlib.sha256).digest()
    assert key.hash_value("alice") == base64.urlsafe_b64encode(spec[:12]).decode()
    assert key.hash_value("alice") == "bFjVyFolgQLjrFHL"
    assert key.hash_value(1) == "4hMef6yH2ApAbRZv"
    assert key.hash_value(1.0) == "ZZip1YswC-bAX6L_"
    assert key.hash_value(True) == "Rzc0_2pUKXdl0mST"
    assert key.hash_value("1") == "Z7MIpTffnBal4e1P"


def test_types_are_distinguished() -> None:
    key = MetadataKey(KEY)
    values: list[MetaValue] = [1, 1.0, True, "1", "True", 0, 0.0, False, "", "0"]
    assert len({key.hash_value(v) for v in values}) == len(values)


def test_negative_zero_equals_zero() -> None:
    key = MetadataKey(KEY)
    assert key.hash_value(-0.0) == key.hash_value(0.0)


@pytest.mark.parametrize("value", [None, b"x", [1], {"a": 1}, 1j])
def test_unsupported_types_are_rejected(value: object) -> None:
    with pytest.raises(TypeError, match="metadata values are"):
        MetadataKey(KEY).hash_value(value)  # type: ignore[arg-type]


@given(meta_values)
@settings(max_examples=300)
def test_hash_is_deterministic_and_well_formed(value: MetaValue) -> None:
    h = MetadataKey(KEY).hash_value(value)
    assert HASH_FORM.fullmatch(h)
    assert MetadataKey(bytes(KEY)).hash_value(value) == h


@given(meta_values, meta_values)
@settings(max_examples=500)
def test_hash_equal_iff_same_typed_value(a: MetaValue, b: MetaValue) -> None:
    key = MetadataKey(KEY)
    assert (key.hash_value(a) == key.hash_value(b)) == (identity(a) == identity(b))


@given(meta_values)
@settings(max_examples=200)
def test_hash_depends_on_the_key(value: MetaValue) -> None:
    assert MetadataKey(KEY).hash_value(value) != MetadataKey(OTHER).hash_value(value)


# -- shared_form and match_values -----------------------------------------------------

META: dict[str, MetaValue] = {"user": "alice", "n": 3, "score": 0.5, "done": True}


def test_team_hashes_values_keeps_keys() -> None:
    key = MetadataKey(KEY)
    original = dict(META)
    shared = key.shared_form(META, Privacy.TEAM)
    assert shared == {k: key.hash_value(v) for k, v in META.items()}
    assert all(isinstance(v, str) and HASH_FORM.fullmatch(v) for v in shared.values())
    assert original == META


def test_public_is_an_unchanged_copy() -> None:
    shared = MetadataKey(KEY).shared_form(META, Privacy.PUBLIC)
    assert shared == META
    assert shared is not META
    shared["user"] = "mallory"
    assert META["user"] == "alice"


@pytest.mark.parametrize("privacy", [Privacy.PRIVATE, Privacy.EPHEMERAL])
def test_unreplicated_levels_have_no_shared_form(privacy: Privacy) -> None:
    with pytest.raises(ValueError, match=privacy.name):
        MetadataKey(KEY).shared_form(META, privacy)


def test_empty_metadata() -> None:
    assert MetadataKey(KEY).shared_form({}, Privacy.TEAM) == {}


def test_match_values() -> None:
    key = MetadataKey(KEY)
    assert key.match_values("alice") == ["alice", key.hash_value("alice")]
    assert key.match_values(True) == [True, key.hash_value(True)]


@given(meta_values, st.sampled_from([Privacy.TEAM, Privacy.PUBLIC]))
@settings(max_examples=300)
def test_a_filter_finds_the_shared_form(value: MetaValue, privacy: Privacy) -> None:
    key = MetadataKey(KEY)
    stored = key.shared_form({"k": value}, privacy)["k"]
    wanted = key.match_values(value)
    assert any(identity(stored) == identity(w) for w in wanted)


@given(meta_values, meta_values)
@settings(max_examples=300)
def test_a_filter_does_not_find_other_team_values(a: MetaValue, b: MetaValue) -> None:
    key = MetadataKey(KEY)
    stored = key.shared_form({"k": a}, Privacy.TEAM)["k"]
    found = any(identity(stored) == identity(w) for w in key.match_values(b))
    # a 16-character str b could only equal the stored hash if it were that hash
    assert found == (identity(a) == identity(b) or b == stored)

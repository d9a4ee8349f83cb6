"""federation.io.keyring and federation.io.filewatch: versioned metadata keys, their file,
its re-reading; the ``memnode federation key`` commands."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from federation.errors import MetadataKeyError
from federation.events import SharedPrivacy
from federation.io.filewatch import FileWatch
from federation.io.keyring import KeyFile, MetadataKeys
from federation.io.metakey import MetadataKey

from helpers import run_cli

KEY = MetadataKey(bytes(range(32)))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_old_single_key_file_is_key_0_and_hashes_as_before(tmp_path: Path) -> None:
    KEY.write(tmp_path / "metadata.key")
    keys = MetadataKeys.load(tmp_path / "metadata.key", {})
    assert keys.ids == [0] and keys.current_id == 0
    assert keys.fingerprint() == KEY.fingerprint()
    assert keys.shared_form({"a": "x"}, SharedPrivacy.TEAM) == {"a": KEY.hash_value("x")}
    assert keys.match_values("x") == ["x", KEY.hash_value("x")]


def test_add_use_retire_round_trip_through_the_file(tmp_path: Path) -> None:
    path = tmp_path / "metadata.key"
    old = MetadataKeys.single(KEY)
    added = old.add()
    assert added.ids == [0, 1] and added.current_id == 0
    added.write(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert bytes(range(32)).hex() not in str(added)
    loaded = MetadataKeys.load(path, {})
    assert loaded.fingerprints() == added.fingerprints()
    used = loaded.use(1)
    h = used.hashes("blue")
    assert used.shared_form({"t": "blue"}, SharedPrivacy.TEAM) == {"t": h[1]}
    assert used.match_values("blue") == ["blue", h[1], h[0]]  # both match in the overlap
    with pytest.raises(MetadataKeyError, match="is current"):
        used.retire(1)
    with pytest.raises(MetadataKeyError, match="no metadata key 7"):
        used.use(7)
    retired = used.retire(0)
    retired.write(path)
    again = MetadataKeys.load(path, {})
    assert again.ids == [1] and again.match_values("blue") == ["blue", h[1]]
    assert again.add().ids == [1, 2]


@pytest.mark.parametrize(("text", "words"), [
    ("0 " + "ab" * 32 + "\n1 " + "cd" * 32 + "\n", "exactly one key must be marked current"),
    ("0 " + "ab" * 32 + " current\n1 " + "cd" * 32 + " current\n", "found 2"),
    ("0 " + "ab" * 32 + " current\n0 " + "cd" * 32 + "\n", "line 2: key id 0 twice"),
    ("0 " + "zz" * 32 + " current\n", "line 1: not valid hex"),
    ("x " + "ab" * 32 + " current\n", "line 1: expected 'ID HEX'"),
    ("0 " + "ab" * 32 + " current\n1 " + "ab" * 32 + "\n", "same metadata key"),
])
def test_a_malformed_key_file_says_where_and_never_shows_a_key(text: str, words: str) -> None:
    with pytest.raises(MetadataKeyError, match=words) as info:
        MetadataKeys.parse(text.encode(), where="f")
    assert "abab" not in str(info.value) and "cdcd" not in str(info.value)


def test_the_key_file_is_re_read_when_it_changes_and_a_bad_one_is_refused(
        tmp_path: Path) -> None:
    path = tmp_path / "metadata.key"
    MetadataKeys.single(MetadataKey.generate()).write(path)
    keys = KeyFile(path, {}, check_every=0.0, settle=0.0)
    first = keys.fingerprint()
    keys.keys().add().write(path)
    assert keys.keys().ids == [0, 1] and keys.reloads == 1
    keys.keys().use(1).write(path)
    assert keys.fingerprint() != first and keys.keys().current_id == 1
    path.write_text("0 not-a-key current\n")
    assert keys.keys().current_id == 1 and keys.rejected == 1  # the keys in force stay
    assert keys.reloads == 2


def test_a_file_watch_looks_on_a_cadence_and_waits_for_a_steady_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("one")
    clock = Clock()
    watch = FileWatch([path], check_every=2.0, settle=0.5, clock=clock)
    assert not watch.changed()
    path.write_text("two, longer")
    clock.now += 1.0
    assert not watch.changed()  # not looked at yet
    clock.now += 1.0
    assert not watch.changed()  # seen, settling
    path.write_text("three, longer still")
    clock.now += 0.4
    assert not watch.changed()  # changed again: settling anew
    clock.now += 0.5
    assert watch.changed()  # steady for 0.5 s: reported once
    assert not watch.changed()
    os.unlink(path)
    clock.now += 2.0
    assert not watch.changed()
    clock.now += 0.5
    assert watch.changed()  # gone is a change too


def test_the_key_commands_rotate_a_federation_key_file(tmp_path: Path) -> None:
    MetadataKeys.single(MetadataKey.generate()).write(tmp_path / "metadata.key")
    added = run_cli("federation", "key", "add", str(tmp_path))
    assert added.returncode == 0, added.stderr
    assert "memnode federation key use" in added.stderr
    used = run_cli("federation", "key", "use", str(tmp_path), "1")
    assert used.returncode == 0 and "1\t" in used.stdout and "current" in used.stdout
    refused = run_cli("federation", "key", "retire", str(tmp_path), "1")
    assert refused.returncode == 2 and "is current" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert MetadataKeys.load(tmp_path / "metadata.key", {}).ids == [0, 1]

"""memnode.node.redact: what is caught, what is left alone, and that it stays linear."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memnode.node.redact import KINDS, redact

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi6Z2GZ0Xu1BnXhWlYJm6lYk1\n"
    "Proc-Type: 4,ENCRYPTED\n"
    "DEK-Info: AES-128-CBC,3F17F5316E2BAC89\n"
    "q3LZ0yqA+fVEq6wF==\n"
    "-----END RSA PRIVATE KEY-----"
)

# (text, expected redacted text, expected counts)
CAUGHT = [
    # email
    ("write to bob.smith+tag@example.co.uk today", "write to [EMAIL] today", {"email": 1}),
    ("<alice_o'neil@mail.example.org>", "<alice_o'[EMAIL]>", {"email": 1}),
    ("x.y@sub.example.io.", "[EMAIL].", {"email": 1}),
    # phones
    ("call +1 (415) 555-0132 now", "call [PHONE] now", {"phone": 1}),
    ("call 415-555-0132.", "call [PHONE].", {"phone": 1}),
    ("call (415) 555-0132", "call [PHONE]", {"phone": 1}),
    ("call 415.555.0132", "call [PHONE]", {"phone": 1}),
    ("call 1-415-555-0132", "call 1-[PHONE]", {"phone": 1}),
    ("London +44 20 7946 0958", "London [PHONE]", {"phone": 1}),
    ("Paris 06 12 34 56 78", "Paris [PHONE]", {"phone": 1}),
    ("Paris 06.12.34.56.78", "Paris [PHONE]", {"phone": 1}),
    ("+33 6 12 34 56 78", "[PHONE]", {"phone": 1}),
    ("Berlin +4915112345678", "Berlin [PHONE]", {"phone": 1}),
    ("UK 020 7946 0958 or 07700 900123", "UK [PHONE] or [PHONE]", {"phone": 2}),
    ("Berlin 030/12345678", "Berlin [PHONE]", {"phone": 1}),
    # cards (Luhn-valid test numbers)
    ("visa 4111 1111 1111 1111 exp", "visa [CARD] exp", {"card": 1}),
    ("visa 4111-1111-1111-1111", "visa [CARD]", {"card": 1}),
    ("visa 4111111111111111", "visa [CARD]", {"card": 1}),
    ("amex 378282246310005", "amex [CARD]", {"card": 1}),
    ("amex 3782 822463 10005", "amex [CARD]", {"card": 1}),
    ("mc 5555 5555 5555 4444.", "mc [CARD].", {"card": 1}),
    ("Qty 2 4111 1111 1111 1111 2025", "Qty 2 [CARD] 2025", {"card": 1}),
    ("order 1234 4111 1111 1111 1111", "order 1234 [CARD]", {"card": 1}),
    # API keys and tokens
    ("aws AKIAIOSFODNN7EXAMPLE ok", "aws [API_KEY] ok", {"api_key": 1}),
    ("gh ghp_" + "A1b2" * 9, "gh [API_KEY]", {"api_key": 1}),
    ("gh gho_" + "z9" * 18, "gh [API_KEY]", {"api_key": 1}),
    ("gh github_pat_11ABCDEFG0" + "x" * 60, "gh [API_KEY]", {"api_key": 1}),
    ("slack xoxb-123456789012-1234567890123-AbCdEf", "slack [API_KEY]", {"api_key": 1}),
    ("slack xoxp-12345-67890-abcdef", "slack [API_KEY]", {"api_key": 1}),
    ("openai sk-proj-Ab3dEf6hIj9lMn0pQr2tUv4x", "openai [API_KEY]", {"api_key": 1}),
    ("openai sk-" + "a1" * 24 + ".", "openai [API_KEY].", {"api_key": 1}),
    ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "stripe [API_KEY]", {"api_key": 1}),
    ("google AIzaSyA-1234567890abcdefghijklmnopqrstu", "google [API_KEY]", {"api_key": 1}),
    (f"token {JWT} end", "token [API_KEY] end", {"api_key": 1}),
    ("Authorization: Bearer abcDEF0123456789ghij", "Authorization: Bearer [API_KEY]",
     {"api_key": 1}),
    (f"Authorization: Bearer {JWT}", "Authorization: Bearer [API_KEY]", {"api_key": 1}),
    (f"key:\n{PEM}\nthanks", "key:\n[PRIVATE_KEY]\nthanks", {"private_key": 1}),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9u\n"
     "-----END OPENSSH PRIVATE KEY-----", "[PRIVATE_KEY]", {"private_key": 1}),
    ("-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBF0aaaaaaaaaaaaaaaa\n"
     "-----END PGP PRIVATE KEY BLOCK-----", "[PRIVATE_KEY]", {"private_key": 1}),
    ("pasted: -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nAAAAAAAAAAAAAAAAAAAA",
     "pasted: [PRIVATE_KEY]", {"private_key": 1}),
    # secrets assigned to a key
    ("password: hunter2!!", "password: [SECRET]", {"secret": 1}),
    ('{"api_key": "abcd1234efgh", "n": 1}', '{"api_key": "[SECRET]", "n": 1}', {"secret": 1}),
    ("export CLIENT_SECRET=s3cr3t-v4lue", "export CLIENT_SECRET=[SECRET]", {"secret": 1}),
    ("api_key=sk-" + "Q" * 30, "api_key=[API_KEY]", {"api_key": 1}),
    # IP addresses
    ("host 192.168.1.20 down", "host [IP] down", {"ip": 1}),
    ("connect 10.0.0.1:8080.", "connect [IP]:8080.", {"ip": 1}),
    ("v6 2001:0db8:85a3:0000:0000:8a2e:0370:7334", "v6 [IP]", {"ip": 1}),
    ("v6 2001:db8::8a2e:370:7334, fe80::1.", "v6 [IP], [IP].", {"ip": 2}),
    ("mapped ::ffff:203.0.113.9", "mapped [IP]", {"ip": 1}),
    ("prefix 2001:db8::", "prefix [IP]", {"ip": 1}),
    # IBAN
    ("IBAN DE89 3704 0044 0532 0130 00.", "IBAN [IBAN].", {"iban": 1}),
    ("IBAN GB82WEST12345698765432", "IBAN [IBAN]", {"iban": 1}),
    ("IBAN FR14 2004 1010 0505 0001 3M02 606", "IBAN [IBAN]", {"iban": 1}),
    # SSN
    ("ssn 123-45-6789", "ssn [SSN]", {"ssn": 1}),
    ("ssn 123 45 6789", "ssn [SSN]", {"ssn": 1}),
]


@pytest.mark.parametrize(("text", "expected", "counts"), CAUGHT)
def test_caught(text: str, expected: str, counts: dict[str, int]) -> None:
    assert redact(text) == (expected, counts)


LEFT_ALONE = [
    "The quick brown fox jumps over the lazy dog.",
    "Meeting on 2026-11-22 at 10:30, then 14:05:59 and 23:59:59.999.",
    "Dates: 22/11/2026, 11/22/2026, 22.11.2026, 01 02 2026, 20261122.",
    "Upgrade from 1.2.3 to v1.2.3.4 or 10.0.19045.2965 (build 3.11.7).",
    "We have 3 cats, 12 dogs, 12345 items and 1234567890 bytes; pi is 3.14159265358979.",
    "Counting: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15.",
    "Order 1234567890123456 is not a card (Luhn fails).",
    "A 25-digit id: 1234567890123456789012345.",
    "Grouped long id 4111 1111 1111 1111 1111 1111 1111 is too long for a card.",
    "Loopback 127.0.0.1, ::1 and 0.0.0.0 are not personal.",
    "C++: std::vector<int> and a::b, MAC 00:1a:2b:3c:4d:5e, ratio 16:9.",
    "The bearer of this letter; the token is lost; my password is long.",
    "Use sk-learn, task-force and ghp_short; AKIA alone is a word.",
    "user@localhost has no domain; @handle and a@b are not emails.",
    "SSN-like but invalid: 000-12-3456, 666-12-3456, 900-12-3456, 123-00-4567.",
    "Versions 2.0.0-rc.1, 0.5, 0.25 and 0.12345678.",
    "Price $1,234,567.89 and 1 000 000 units, 12 34 56.",
    "DE00 1234 5678 9012 3456 78 fails the IBAN check.",
    "300.1.2.3 and 1.2.3.256 are not IPs; neither is 1.2.3.4.5.",
    "pwd: /home/alice and the key: value.",
    "[EMAIL] [PHONE] [CARD] [API_KEY] [IP] [IBAN] [SSN] [SECRET] [PRIVATE_KEY]",
    "",
]


@pytest.mark.parametrize("text", LEFT_ALONE)
def test_left_alone(text: str) -> None:
    assert redact(text) == (text, {})


def test_luhn_decides_for_the_same_shape() -> None:
    assert redact("4111 1111 1111 1111") == ("[CARD]", {"card": 1})
    assert redact("4111 1111 1111 1112") == ("4111 1111 1111 1112", {})


def test_iban_check_digits_decide() -> None:
    assert redact("GB82 WEST 1234 5698 7654 32")[1] == {"iban": 1}
    assert redact("GB83 WEST 1234 5698 7654 32")[1] == {}


def test_counts_several_kinds_and_repeats() -> None:
    text = (
        "Ask bob@example.com or carol@example.org, call +44 20 7946 0958, "
        "pay with 4111 1111 1111 1111 from 192.168.0.7 using AKIAIOSFODNN7EXAMPLE."
    )
    out, counts = redact(text)
    assert counts == {"email": 2, "phone": 1, "card": 1, "ip": 1, "api_key": 1}
    assert out == (
        "Ask [EMAIL] or [EMAIL], call [PHONE], "
        "pay with [CARD] from [IP] using [API_KEY]."
    )


def test_a_span_is_counted_once() -> None:
    # digits inside a token or an e-mail must not also count as a phone or a card
    _, counts = redact("sk-4111111111111111abcdefgh and 4155550132@example.com")
    assert counts == {"api_key": 1, "email": 1}


def test_kinds_are_unique_lowercase_labels() -> None:
    assert len(set(KINDS)) == len(KINDS)
    assert all(k.isidentifier() and k == k.lower() for k in KINDS)
    assert {"email", "phone", "card", "api_key", "ip", "iban", "ssn"} <= set(KINDS)


def test_every_caught_kind_is_declared() -> None:
    seen = set()
    for text, _, _ in CAUGHT:
        seen |= set(redact(text)[1])
    assert seen == set(KINDS)


SAMPLES = [
    ("bob@example.com", "email"),
    ("+44 20 7946 0958", "phone"),
    ("415-555-0132", "phone"),
    ("4111 1111 1111 1111", "card"),
    ("AKIAIOSFODNN7EXAMPLE", "api_key"),
    (JWT, "api_key"),
    ("192.168.10.20", "ip"),
    ("2001:db8::8a2e:370:7334", "ip"),
    ("DE89370400440532013000", "iban"),
    ("123-45-6789", "ssn"),
]
# letters that cannot spell a trigger word ("bearer", "token", "key", "password"...)
FILLER = st.text(alphabet="aeiouxyz ,;!?", max_size=40)


@given(st.lists(st.tuples(FILLER, st.sampled_from(SAMPLES)), max_size=6), FILLER)
@settings(max_examples=300, deadline=None)
def test_embedded_pii_never_survives(parts: list[tuple[str, tuple[str, str]]], end: str) -> None:
    text = "".join(f"{filler} {sample} " for filler, (sample, _) in parts) + end
    out, counts = redact(text)
    for _, (sample, kind) in parts:
        assert sample not in out
        assert counts.get(kind, 0) >= 1
    assert sum(counts.values()) == len(parts)


@given(st.text(max_size=300))
@settings(max_examples=500, deadline=None)
def test_never_raises_and_is_idempotent(text: str) -> None:
    out, counts = redact(text)
    assert set(counts) <= set(KINDS)
    assert all(n > 0 for n in counts.values())
    assert redact(out) == (out, {})


@given(st.text(alphabet="0123456789 -.+()/:@abcdefABCDEF", max_size=300))
@settings(max_examples=500, deadline=None)
def test_idempotent_on_number_soup(text: str) -> None:
    out, _ = redact(text)
    assert redact(out) == (out, {})


N = 64 * 1024
ADVERSARIAL = {
    "digits": "1" * N,
    "digits and dashes": "1-" * (N // 2),
    "groups and dashes": "1111-" * (N // 5),
    "digits and spaces": "1 " * (N // 2),
    "groups of three": "123 " * (N // 4),
    "letters": "a" * N,
    "at signs": "a@" * (N // 2),
    "dotted labels": "a@" + "b." * (N // 2),
    "plus ones": "+1 " * (N // 3),
    "colons": ":" * N,
    "hex and colons": "ffff:" * (N // 5),
    "dotted digits": "1." * (N // 2),
    "dashes": "-" * N,
    "open parens": "(415) " * (N // 6),
    "zeros": "0 " * (N // 2),
    "slashes": "01/" * (N // 3),
    "iban prefix": "DE89 " + "ABCD " * (N // 5),
    "bearer without digit": "Bearer " + "a" * N,
    "unterminated pem": "-----BEGIN PRIVATE KEY-----" + "a" * N,
    "jwt halves": ("eyJ" + "a" * 10 + ".") * (N // 14),
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("text", list(ADVERSARIAL.values()), ids=list(ADVERSARIAL))
def test_adversarial_input_finishes(text: str) -> None:
    out, counts = redact(text)
    if "PRIVATE KEY" in text or "eyJ" in text:
        assert counts and set(counts) <= {"private_key", "api_key"}
    else:
        assert (out, counts) == (text, {})

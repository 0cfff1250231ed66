from __future__ import annotations

import pytest

from channels.email import tokens

SECRET = "test-secret-key-0123456789abcdef"


def test_round_trip_and_case_insensitive() -> None:
    address = tokens.make_reply_address("k3x9q2", SECRET, domain="example.com")
    local = address.partition("@")[0]
    assert local.startswith("support+k3x9q2.")
    assert len(local) <= 64
    assert tokens.verify(address, SECRET, domain="example.com") == "k3x9q2"
    # mail systems may change the case of the local part (and the domain is case-free)
    assert tokens.verify(address.upper(), SECRET, domain="example.com") == "k3x9q2"
    assert tokens.verify(f"<{address}>", SECRET) == "k3x9q2"


def test_mixed_case_token_survives_lower_casing() -> None:
    token = "AbC_dE-fG1"  # e.g. secrets.token_urlsafe output is case-sensitive
    address = tokens.make_reply_address(token, SECRET, domain="example.com")
    assert address == address.lower()
    assert tokens.verify(address.lower(), SECRET, domain="example.com") == token


def test_forged_or_foreign_addresses_do_not_verify() -> None:
    address = tokens.make_reply_address("conv42", SECRET, domain="example.com")
    local, _, domain = address.partition("@")
    base, _, tag = local.partition("+")
    payload, _, mac = tag.rpartition(".")
    flipped = mac[:-1] + ("a" if mac[-1] != "a" else "b")
    assert tokens.verify(f"{base}+{payload}.{flipped}@{domain}", SECRET) is None
    # the MAC of one conversation does not open another
    assert tokens.verify(f"{base}+conv43.{mac}@{domain}", SECRET) is None
    assert tokens.verify(address, "another-secret-0123456789") is None
    assert tokens.verify(address, SECRET, domain="other.example") is None
    assert tokens.verify(address, SECRET, local="sales") is None
    for junk in ("", "support@example.com", "support+@example.com", "support+x.y@", "@@", "+.@"):
        assert tokens.verify(junk, SECRET) is None


def test_overlong_token_is_refused_rather_than_producing_a_bad_address() -> None:
    with pytest.raises(ValueError, match="64"):
        tokens.make_reply_address("Q" * 60, SECRET, domain="example.com")
    with pytest.raises(ValueError):
        tokens.make_tag("has space", SECRET)

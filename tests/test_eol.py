"""The end-of-life table: which release an outside base names, and whether its
support has ended on a given day."""

from __future__ import annotations

from datetime import date

import pytest

from javabase.manifest import eol

DAY = date(2026, 11, 30)


@pytest.mark.parametrize(("reference", "release"), [
    ("alpine:3.20@sha256:" + "d" * 64, "alpine 3.20"),
    ("alpine:3.22.6", "alpine 3.22"),
    ("docker.io/library/debian:12.7", "debian 12"),
    ("debian:bookworm-slim", "debian 12"),
    ("mirror.abc.com/library/alpine:3.21", "alpine 3.21"),
    ("alpine:3.2", None),
    ("ubuntu:24.04", None),
    ("debian:bookwormish", None),
])
def test_the_release_a_reference_names(reference: str, release: str | None) -> None:
    found = eol.release_of(reference)
    assert (f"{found.distribution} {found.release}" if found else None) == release


def test_a_release_past_its_end_is_reported_with_the_oldest_supported_one_of_its_distribution() -> None:
    assert eol.past_end_of_life("alpine:3.20.10", DAY) == (
        eol.Release("alpine", "3.20", date(2026, 4, 1)), eol.Release("alpine", "3.22", date(2027, 5, 1)))
    assert eol.past_end_of_life("alpine:3.22.6", DAY) is None
    assert eol.past_end_of_life("alpine:3.22.6", date(2027, 5, 1)) is not None  # the day support ends

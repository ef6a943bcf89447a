"""Links between generated pages: the fast string version agrees with posixpath.relpath."""

from __future__ import annotations

import posixpath

from hypothesis import given, settings
from hypothesis import strategies as st

from pmkb.core.urls import relative_url

segment = st.sampled_from(["a", "b", "2024", "services", "kb", "x.html", "index.html", "INC-2024-001"])
url = st.builds(lambda parts, slash: "/".join(parts) + ("/" if parts and slash else ""),
                st.lists(segment, max_size=5), st.booleans())


def by_relpath(from_url: str, to_url: str) -> str:
    base = from_url if from_url.endswith("/") or from_url == "" else posixpath.dirname(from_url) + "/"
    rel = posixpath.relpath(to_url.rstrip("/") or ".", base.rstrip("/") or ".")
    if to_url.endswith("/") or to_url == "":
        return "./" if rel == "." else rel + "/"
    return rel


@settings(max_examples=3000, deadline=None)
@given(url, url)
def test_relative_url_is_what_relpath_gives(a, b):
    assert relative_url(a, b) == by_relpath(a, b)


def test_examples():
    assert relative_url("services/checkout/", "2024/INC-1/") == "../../2024/INC-1/"
    assert relative_url("services/checkout/", "services/db/") == "../db/"
    assert relative_url("", "incidents/") == "incidents/"
    assert relative_url("incidents/", "") == "../"
    assert relative_url("a/b.html", "a/c.html") == "c.html"
    assert relative_url("incidents/", "incidents/") == "./"

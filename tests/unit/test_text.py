"""The one rule for text from outside, as a model built in code meets it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.common.events import LineItem, OrderCancelled, ShippingAddress
from services.common.text import NUL_MESSAGE, SURROGATE_MESSAGE, text_problem


def _reference(value: Any) -> str | None:
    """The rule read plainly: every string at every depth, keys included."""
    strings: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, str):
            strings.append(v)
        elif isinstance(v, dict):
            for key, item in v.items():
                walk(key)
                walk(item)
        elif isinstance(v, list | tuple):
            for item in v:
                walk(item)

    walk(value)
    for s in strings:
        if "\x00" in s:
            return NUL_MESSAGE
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            return SURROGATE_MESSAGE
    return None


_text = st.text(alphabet=st.sampled_from(["a", "é", "\x00", "\ud800", " "]), max_size=4)
_scalars = st.one_of(_text, st.integers(), st.none(), st.builds(uuid.uuid4))
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner, inner),
        st.dictionaries(_text, inner, max_size=3),
    ),
    max_leaves=12,
)


@given(_values)
def test_finds_a_bad_string_wherever_it_is(value: Any) -> None:
    # Whether a problem is found, at any depth, matches the plain reading
    # (which problem is named first may differ when there are two).
    assert (text_problem(value) is None) == (_reference(value) is None)


def test_an_event_built_in_code_with_a_nul_deep_inside_is_refused() -> None:
    with pytest.raises(ValidationError, match="NUL"):
        OrderCancelled(order_id=uuid.uuid4(), reason="out\x00of_stock")
    with pytest.raises(ValidationError, match="NUL"):
        LineItem.model_validate({"sku": "SKU\x00", "quantity": 1})
    with pytest.raises(ValidationError, match="surrogates"):
        ShippingAddress.model_validate(
            {"name": "A", "line1": "\ud800", "city": "B", "postal_code": "1", "country": "GB"}
        )

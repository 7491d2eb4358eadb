"""nsprim.cli.ls.json_text writes what ``json.dumps(value, indent=2)`` writes.

``nsprim ls --json`` writes its document without importing json (whose
decoder loads re); this proves the text is json's own, byte for byte, for
the values a listing holds and for those it hands back to json.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from nsprim.cli.ls import json_text

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=12)
)
KEYS = st.text(max_size=6) | st.sampled_from(["ns", "type", 'q"uote', "back\\slash"])
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(KEYS, inner, max_size=4)
        | st.dictionaries(st.integers(0, 9), inner, max_size=2)  # json turns keys into str
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(VALUES)
def test_json_text_is_json_dumps_indent_2(value: Any) -> None:
    assert json_text(value) == json.dumps(value, indent=2)


def test_json_text_of_a_listing_document() -> None:
    doc = {
        "namespaces": [
            {"ns": 4026531840, "type": "net", "nprocs": 97, "pid": 1, "user": "root",
             "command": '/sbin/init "splash"', "id": None, "held": ["process", "fd"],
             "threads": [], "fds": [{"pid": 42, "fd": 5}], "mounts": {}},
            {"ns": 4026532001, "type": "uts", "user": "j\u00f6rg", "command": "a\tb\x7f"},
        ]
    }  # fmt: skip
    assert json_text(doc) == json.dumps(doc, indent=2)
    assert json_text({"namespaces": []}) == '{\n  "namespaces": []\n}'

"""Identifiers that render alike name one thing (issue 11): NFKC, and refusal of control,
invisible and bidi characters and of Latin look-alikes, with the reason."""
from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given, strategies as st

from settlement.reports.bounds import IdentifierRefused, normalise_identifier

BASE = "T-1001-é"
# Invisible or display-changing characters a careless export (or an attacker) inserts.
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u202e", "\u202d",
             "\u2066", "\u200e", "\x1b", "\x07", "\x7f", "\u0085"]
FULLWIDTH = {c: chr(ord(c) + 0xFEE0) for c in "!#$%&()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQ"
             "RSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz{|}~"}


@pytest.mark.parametrize("variant, reason", [
    ("T-1001\u200b", "U+200B"), ("T-10\u200d01", "U+200D"), ("\ufeffT-1001", "U+FEFF"),
    ("T-10\u00ad01", "U+00AD"), ("T-1001\u202e", "bidirectional"),
    ("\x1b[31mT-1001", "control character U+001B"),
])
def test_an_id_with_an_invisible_or_control_character_is_refused_saying_which(variant, reason):
    with pytest.raises(IdentifierRefused, match=re.escape(reason)):
        normalise_identifier(variant)


def test_fullwidth_and_decomposed_forms_become_the_plain_id():
    assert normalise_identifier("ＴＸＮ－１００１") == "TXN-1001"
    assert normalise_identifier("cafe\u0301") == normalise_identifier("caf\u00e9") == "café"


@pytest.mark.parametrize("variant", ["Т-1001", "T-1001-аb", "ΑΒ-12"])
def test_a_latin_look_alike_from_another_script_is_refused(variant):
    with pytest.raises(IdentifierRefused):
        normalise_identifier(variant)


def test_ids_in_one_non_latin_script_are_kept():
    assert normalise_identifier("注文-1001") == "注文-1001"
    assert normalise_identifier("Заказ-7") == "Заказ-7"


@st.composite
def rendered_alike(draw):
    """An id and a variant of it that renders the same: invisible characters inserted,
    characters in their fullwidth or decomposed form."""
    base = draw(st.text(alphabet="ABCXYZabcxyz0189-_./é", min_size=1, max_size=20))
    out = []
    for char in base:
        form = draw(st.sampled_from(["same", "fullwidth", "decomposed", "invisible"]))
        if form == "fullwidth" and char in FULLWIDTH:
            out.append(FULLWIDTH[char])
        elif form == "decomposed":
            out.append(unicodedata.normalize("NFD", char))
        elif form == "invisible":
            out.append(char + draw(st.sampled_from(INVISIBLE)))
        else:
            out.append(char)
    return base, "".join(out)


@given(rendered_alike())
def test_two_ids_that_render_alike_are_one_id_or_the_variant_is_refused(pair):
    base, variant = pair
    try:
        normalised = normalise_identifier(variant)
    except IdentifierRefused:
        return  # refused: it never becomes a commission of its own
    assert normalised == normalise_identifier(base)

"""Zengin (全銀) account names: half-width katakana, upper-case Latin letters, digits and a
few signs. Full-width katakana and lower-case letters are brought to that form; small kana
become their full-size kana, as banks print them."""
from __future__ import annotations

import unicodedata

_HALF_KANA = [chr(c) for c in range(0xFF66, 0xFF9E)]  # ｦ .. ﾝ
_SMALL = dict(zip("ｧｨｩｪｫｬｭｮｯ", "ｱｲｳｴｵﾔﾕﾖﾂ"))
ALLOWED = set("ｱｲｳｴｵｶｷｸｹｺｻｼｽｾｿﾀﾁﾂﾃﾄﾅﾆﾇﾈﾉﾊﾋﾌﾍﾎﾏﾐﾑﾒﾓﾔﾕﾖﾗﾘﾙﾚﾛﾜｦﾝﾞﾟ"
              "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ().-/ｰ\\,")


def _full_to_half() -> dict[str, str]:
    table: dict[str, str] = {}
    for half in _HALF_KANA + ["ｰ"]:
        table[unicodedata.normalize("NFKC", half)] = half
        for mark in "ﾞﾟ":
            joined = unicodedata.normalize("NFKC", half + mark)
            if len(joined) == 1:
                table[joined] = half + mark
    table["　"] = " "
    table["ー"] = "ｰ"
    return table


_TABLE = _full_to_half()


class KanaError(ValueError):
    pass


def to_zengin_name(name: str, width: int = 30) -> str:
    """The name as Zengin carries it, or KanaError naming the first character it cannot."""
    out = []
    for ch in unicodedata.normalize("NFKC", name).upper():
        ch = _TABLE.get(ch, ch)
        ch = "".join(_SMALL.get(c, c) for c in ch)
        if any(c not in ALLOWED for c in ch):
            raise KanaError(f"{ch!r} cannot be written in a Zengin account name (half-width "
                            "katakana, A-Z, 0-9, space and ().-/ only)")
        out.append(ch)
    text = "".join(out).strip()
    if not text:
        raise KanaError("the account name is empty")
    if len(text) > width:
        raise KanaError(f"the account name is {len(text)} characters in half-width form; "
                        f"at most {width}")
    return text

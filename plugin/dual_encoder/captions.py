"""Captions for OpenMoji files from Unicode character names (``unicodedata.name``).

Why these rules: a file name like ``1F44D-1F3FD`` is a codepoint sequence; joining the
names of its codepoints gives a real caption ("thumbs up sign medium skin tone") once the
invisible machinery of emoji sequences is dropped or spelled as people say it:

* zero width joiner, variation selectors and the cancel tag carry no meaning: dropped;
* Fitzpatrick modifiers become the skin-tone words the emoji keyboards use;
* regional indicator letters become ``flag`` + the country code ("flag fr");
* tag letters (subdivision flags such as England) become one code ("gbeng");
* the combining keycap becomes "keycap".
A file with any codepoint Unicode has no name for (OpenMoji's private-use extras) has no
caption and is skipped. Captions are lowercase words separated by single spaces.
"""

from __future__ import annotations

import unicodedata

_DROP = {0x200D, 0xFE0E, 0xFE0F, 0xE007F}
_SKIN = {
    0x1F3FB: "light skin tone",
    0x1F3FC: "medium-light skin tone",
    0x1F3FD: "medium skin tone",
    0x1F3FE: "medium-dark skin tone",
    0x1F3FF: "dark skin tone",
}
_KEYCAP = 0x20E3


def codepoints(file_stem: str) -> list[int]:
    """``"1F44D-1F3FD"`` -> ``[0x1F44D, 0x1F3FD]``; raises ValueError on a non-hex stem."""
    return [int(part, 16) for part in file_stem.split("-")]


def caption_for(cps: list[int]) -> str | None:
    """The caption of a codepoint sequence, or None if a codepoint has no Unicode name."""
    words: list[str] = []
    flag_letters = ""
    tag_letters = ""
    for cp in cps:
        if cp in _DROP:
            continue
        if cp in _SKIN:
            words.append(_SKIN[cp])
        elif cp == _KEYCAP:
            words.append("keycap")
        elif 0x1F1E6 <= cp <= 0x1F1FF:
            flag_letters += chr(ord("a") + cp - 0x1F1E6)
        elif 0xE0061 <= cp <= 0xE007A:
            tag_letters += chr(ord("a") + cp - 0xE0061)
        elif 0xE0030 <= cp <= 0xE0039:
            tag_letters += chr(ord("0") + cp - 0xE0030)
        else:
            name = unicodedata.name(chr(cp), None)
            if name is None:
                return None
            words.append(name.lower())
    if flag_letters:
        words.append(f"flag {flag_letters}")
    if tag_letters:
        words.append(tag_letters)
    caption = " ".join(" ".join(words).split())
    return caption or None

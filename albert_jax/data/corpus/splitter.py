"""A rule-based English sentence splitter for text that does not come one sentence per line.

Sentence-order prediction only needs boundaries that are usually right, so this is a regex with
an abbreviation list rather than a trained model (nltk's punkt would need a download).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

# End punctuation, closing quotes or brackets, whitespace, and (captured) the first character
# of the next word, which must be a capital or a digit: "e.g. the" stays whole. Or CJK end
# punctuation, which needs no space after it.
_CANDIDATE = re.compile(r"""[.!?…]+["'”’)\]]*\s+(?=["'“‘(\[]*(\w))|[。！？]+""")

# Lower-cased words that end in a period without ending a sentence ("Dr. Smith").
_ABBREVIATIONS = frozenset(
    """
    mr mrs ms dr prof sr jr st mt vs cf fig figs eq eqs no nos vol vols pp ch sec sect approx
    inc ltd co corp dept est gen gov lt col sgt capt rev hon jan feb mar apr jun jul aug sep
    sept oct nov dec mon tue wed thu fri sat sun e.g i.e a.m p.m u.s u.k ph.d al resp
    """.split()
)

# Initials and dotted acronyms: "J." in "J. R. R. Tolkien", "U.S.A.".
_INITIALS = re.compile(r"(?:[A-Za-z]\.)+")


def split_sentences(text: str) -> list[str]:
    """Splits `text` into sentences; each line break also ends a sentence.

    Line breaks end sentences because text that is already one sentence per line, or that has
    one paragraph per line (Wikipedia dumps), must come back unchanged or split further.
    """
    return [sentence for line in text.splitlines() for sentence in _split_line(line)]


def _split_line(line: str) -> Iterator[str]:
    start = 0
    for match in _CANDIDATE.finditer(line):
        opener = match.group(1)
        if opener is not None and not (opener.isupper() or opener.isdigit()):
            continue
        if _ends_with_abbreviation(line[start : match.start() + 1]):
            continue
        sentence = line[start : match.end()].strip()
        if sentence:
            yield sentence
        start = match.end()
    sentence = line[start:].strip()
    if sentence:
        yield sentence


def _ends_with_abbreviation(text: str) -> bool:
    """Whether `text` (ending at the first end punctuation mark) ends with an abbreviation."""
    if not text.endswith("."):
        return False
    words = text.split()
    if not words:
        return False
    word = words[-1].lstrip("\"'“‘([")
    return word[:-1].lower() in _ABBREVIATIONS or _INITIALS.fullmatch(word) is not None

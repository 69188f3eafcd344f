"""Texts must not reveal the service (privacy.md "SMS rules").

A message is checked for words that disclose substance-use treatment (and, when the patient is
known, their full name). Templates are refused with 422 `message-privacy` when saved; a coach's
free text is refused unless the coach explicitly confirms it.
"""

from __future__ import annotations

import re

from backend.outreach.folding import folded

#: Words and stems that reveal the service; matched case-insensitively at word starts, so
#: "overdosed", "Suboxone®" and "detoxing" are caught too.
REVEALING = ("addiction", "addict", "substance", "opioid", "opiate", "drug", "methadone", "buprenorphine",
             "suboxone", "subutex", "sublocade", "naloxone", "narcan", "naltrexone", "vivitrol", "overdose",
             "detox", "rehab", "recovery", "sober", "sobriety", "heroin", "fentanyl", "fentanil", "withdrawal",
             "sud", "oud", "mat", "moud", "treatment program", "bridge clinic", "addiction clinic", "12-step",
             "narcotics", "alcoholics anonymous", "relapse", "clean and sober", "methadone clinic")

_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


def revealing_words(text: str, *, full_name: tuple[str, str] | None = None) -> list[str]:
    """The revealing words in `text`, as listed in REVEALING (sorted, each once)."""
    plain = folded(text)
    words = _WORD.findall(plain)
    joined = " ".join(words)
    found = set()
    for term in REVEALING:
        if " " in term:
            if re.search(rf"\b{re.escape(term)}\b", joined):
                found.add(term)
        elif len(term) <= 4:  # short acronyms only as whole words ("mat" not "matter")
            if term in words:
                found.add(term)
        elif any(word.startswith(term) for word in words):
            found.add(term)
    if full_name is not None:
        given, family = (folded(part) for part in full_name)
        if re.search(rf"\b{re.escape(given)}\b.*\b{re.escape(family)}\b", joined):
            found.add("the patient's full name")
    return sorted(found)

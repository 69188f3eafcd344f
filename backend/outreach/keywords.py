"""What a reply asks for: to stop texts, to start them again, help — or nothing (a reply for the
coach).

privacy.md: STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT in any case with any
surrounding spaces or punctuation opt out at once, and so does any reasonable plain-language
request ("please stop texting me", "don't text me"); START, YES, UNSTOP opt back in; HELP and
INFO get a short reply.
"""

from __future__ import annotations

import enum
import re

from backend.outreach.folding import folded


class Intent(enum.StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_KEYWORDS = frozenset({"HELP", "INFO"})

_TEXTING = r"(?:text|txt|messag|msg|sms|contact|send|bother)\w*"
#: Words that may stand between "don't" and "text": "don't ever text me", "do not want any more messages".
_BETWEEN = r"(?:(?:ever|want|wanna|need|like|to|get|getting|receive|any|more|these|those|your|the|such|me)\s+){0,4}"
#: Plain-language requests to stop, matched on lower-case text without apostrophes.
_PLAIN_OPT_OUT = re.compile("|".join((
    rf"\b(?:stop|quit|cease|end)\s+(?:getting\s+|receiving\s+)?(?:all\s+|the\s+|these\s+|your\s+)?{_TEXTING}",
    rf"\b(?:dont|do\s+not|never)\s+{_BETWEEN}{_TEXTING}",
    rf"\bno\s+more\s+{_TEXTING}",
    r"\b(?:unsubscribe|opt\s*-?\s*out|optout|opt\s+me\s+out)\b",
    r"\b(?:take|remove)\s+me\s+off\b",
    r"\bremove\s+(?:me|my\s+(?:number|phone))\b",
    r"\blose\s+(?:my|this)\s+number\b",
    r"\bleave\s+me\s+alone\b",
    r"\bwrong\s+(?:number|person)\b",
    r"\bstop\s+(?:it|now|please)\b",
    r"^\s*(?:please\s+)?stop\b",
    r"(?:^|[,.;:!]|\b(?:thanks|thank\s+you|please|pls|just|now|ok|okay))\s*stop\s*[.!]*\s*$",
)))


def _as_read(text: str) -> str:
    """Folded, and apostrophes dropped: "Don’t" reads as "dont"."""
    return folded(text).replace("'", "").replace("’", "")


def intent(body: str) -> tuple[Intent | None, bool]:
    """The reply's intent, and whether it was a bare keyword (True) rather than a sentence."""
    keyword = re.sub(r"[^A-Za-z]", "", body).upper()
    if keyword in OPT_OUT_KEYWORDS:
        return Intent.OPT_OUT, True
    if keyword in OPT_IN_KEYWORDS:
        return Intent.OPT_IN, True
    if keyword in HELP_KEYWORDS:
        return Intent.HELP, True
    if _PLAIN_OPT_OUT.search(_as_read(body)):
        return Intent.OPT_OUT, False
    return None, False

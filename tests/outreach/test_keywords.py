"""Reading a reply: opt-out keywords and plain-language requests, opting back in, help."""

from __future__ import annotations

import pytest

from backend.outreach.keywords import Intent, intent


@pytest.mark.parametrize("body", ["STOP", "stop", " Stop. ", "STOP!!", "StopAll", "unsubscribe", "CANCEL", "end",
                                  "Quit", "revoke", "OPTOUT", "opt-out", "opt out"])
def test_every_opt_out_keyword_in_any_case_and_punctuation_opts_out(body):
    assert intent(body) == (Intent.OPT_OUT, True)


@pytest.mark.parametrize("body", ["please stop texting me", "Stop sending me messages", "don't text me",
                                  "Do not message me again", "no more texts please", "I want to stop getting texts",
                                  "take me off your list", "leave me alone", "wrong number", "Please stop",
                                  "Can you stop messaging me", "pls stop messaging me", "I don't want these texts",
                                  "I do not want any more messages", "don't ever text me again", "opt me out",
                                  "No thanks, stop", "ok stop"])
def test_plain_language_requests_to_stop_opt_out(body):
    assert intent(body) == (Intent.OPT_OUT, False)


@pytest.mark.parametrize("body, expected", [("START", Intent.OPT_IN), ("yes", Intent.OPT_IN), ("Unstop", Intent.OPT_IN),
                                            ("HELP", Intent.HELP), ("info?", Intent.HELP)])
def test_start_yes_unstop_opt_in_and_help_info_ask_for_help(body, expected):
    assert intent(body) == (expected, True)


@pytest.mark.parametrize("body", ["I'm ok, thanks", "Can we meet at the library?", "yes I can come at 3",
                                  "I'll stop by tomorrow", "Helpful, thanks", "the bus didn't stop",
                                  "don't forget to text me the address", "don't worry, text me later",
                                  "the messages are helpful", "I couldn't stop"])
def test_ordinary_replies_are_for_the_coach(body):
    assert intent(body) == (None, False)

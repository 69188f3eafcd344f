"""Phone numbers: how Bridgeline reads one (US numbers may omit +1) and writes it (E.164).

The one place that parses a number, whether a person typed it (a patient's or a program's
phone, which must be valid) or Twilio sent it (the sender of a reply, taken as it comes).
"""

from __future__ import annotations

import phonenumbers

#: Numbers written without a country code are read as numbers of this region.
PHONE_REGION = "US"


class NotAPhoneNumber(ValueError):
    """The text is not a phone number (or, when validity is required, not a valid one)."""


def e164(raw: str, *, require_valid: bool = True) -> str:
    """`raw` in E.164 (`+16175550100`), or `NotAPhoneNumber` saying why not."""
    try:
        number = phonenumbers.parse(raw, PHONE_REGION)
    except phonenumbers.NumberParseException as exc:
        raise NotAPhoneNumber("Not a phone number.") from exc
    if require_valid and not phonenumbers.is_valid_number(number):
        raise NotAPhoneNumber("Not a valid phone number.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

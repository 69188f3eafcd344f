"""Fixtures for interoperability: the cases and handoffs fixtures, the interface engine's client
and ER7 messages."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from backend.auth.models import Role
from tests.cases.conftest import ago, clinic, nurse, open_episode, register  # noqa: F401 - shared fixtures
from tests.handoffs.conftest import program, send  # noqa: F401 - shared fixtures

_control_ids = itertools.count(1)
ER7 = "x-application/hl7-v2+er7"


def hl7_time(moment: dt.datetime) -> str:
    """An HL7 DTM with an explicit offset (UTC)."""
    return moment.astimezone(dt.timezone.utc).strftime("%Y%m%d%H%M%S+0000")


def adt(event: str, mrn: str, *, control_id: str | None = None, visit: str = "V1",
        admitted: dt.datetime | None = None, discharged: dt.datetime | None = None, disposition: str = "",
        patient_class: str = "E", diagnosis: str = "") -> tuple[str, str]:
    """An ADT message (ER7, segments ending in CR) and its control id."""
    control_id = control_id or f"MSG{next(_control_ids):06d}"
    now = dt.datetime.now(dt.timezone.utc)
    pv1 = [""] * 46
    pv1[0], pv1[1], pv1[2], pv1[3] = "PV1", "1", patient_class, "ED^^^HOSP"
    pv1[19] = visit
    pv1[36] = disposition
    pv1[44] = hl7_time(admitted) if admitted else ""
    pv1[45] = hl7_time(discharged) if discharged else ""
    segments = [
        f"MSH|^~\\&|EPIC|GENHOSP|BRIDGELINE|BRIDGELINE|{hl7_time(now)}||ADT^{event}^ADT_A01|{control_id}|P|2.5",
        f"EVN|{event}|{hl7_time(now)}",
        f"PID|1||{mrn}^^^GENHOSP^MR~999-99-9999^^^SSA^SS||Rivera^Alex||19900402|U",
        "|".join(pv1),
    ]
    if diagnosis:
        segments.append(f"DG1|1||{diagnosis}^Poisoning^I10||")
    return "\r".join(segments) + "\r", control_id


@pytest.fixture
def interface(make_client):
    return make_client(Role.INTERFACE)


@pytest.fixture
def send_adt(interface):
    """`send_adt(body, content_type=ER7)` → (the response, its ACK's segments by name)."""

    def factory(body, content_type=ER7):
        response = interface.client.post("/api/v1/interfaces/hl7v2", data=body.encode() if isinstance(body, str)
                                         else body, headers={"Authorization": f"Bearer {interface.token}",
                                                             "Content-Type": content_type})
        text = response.get_data(as_text=True)
        segments = {line.split("|")[0]: line.split("|") for line in text.split("\r") if line}
        return response, segments

    return factory


__all__ = ["ago", "adt", "hl7_time"]

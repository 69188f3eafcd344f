"""HTTP endpoints of interoperability.

- `POST /api/v1/interfaces/hl7v2` — the hospital interface engine's ADT feed (role `interface`
  only). HL7 v2 ER7 in, with `Content-Type: x-application/hl7-v2+er7` (preferred) or
  `text/plain` (any other type is read the same way: the body decides); the ACK out, in the
  request's type when it is one of those two, else `x-application/hl7-v2+er7`, always HTTP 200
  once signed in (an unreadable body gets an `AR` ACK, never a 4xx/5xx). Like Twilio's
  webhooks it is not in the phone app's OpenAPI contract: the guide documents it.
- `GET /api/v1/episodes/{id}/fhir` and `POST /api/v1/episodes/{id}/fhir-exports` — in the
  contract (`backend.interop.fhir_api`).
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from backend.auth.access import allow, current_user
from backend.auth.models import Role
from backend.interop import adt

ER7 = "x-application/hl7-v2+er7"
_ER7_TYPES = (ER7, "text/plain")

blp = Blueprint("interfaces", __name__, url_prefix="/api/v1/interfaces")


@blp.post("/hl7v2")
@allow(Role.INTERFACE)
def hl7v2():
    ack = adt.receive(request.get_data(cache=False), user=current_user())
    mimetype = request.mimetype if request.mimetype in _ER7_TYPES else ER7
    return Response(ack, status=200, mimetype=mimetype)

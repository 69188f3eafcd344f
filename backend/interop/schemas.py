"""Request bodies of the FHIR exports (the answers are FHIR JSON, described in the contract as
`application/fhir+json` objects: the library's models are the schema)."""

from __future__ import annotations

from marshmallow import fields, validate

from backend.consents.models import INFORMATION_KINDS
from backend.schemas import InputSchema


class FhirExportCreateSchema(InputSchema):
    id = fields.UUID(metadata={"description": "A client-generated id (the disclosure's): the same export again "
                                              "answers the Bundle recorded the first time (200); the same id with "
                                              "another request, 409."})
    recipient_program_id = fields.UUID(required=True, metadata={"description": "The program it goes to (the "
                                                                              "directory's)."})
    information = fields.List(fields.String(validate=validate.OneOf(INFORMATION_KINDS)), required=True,
                              validate=validate.Length(min=1), metadata={
                                  "description": "The kinds of information to send; an external program needs an "
                                                 "active consent naming it and covering every one. The patient's "
                                                 "identity (MRN, name, birth date) always goes."})

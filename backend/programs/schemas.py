"""Request and response bodies of the programs directory."""

from __future__ import annotations

from marshmallow import fields, validate

from backend.programs.models import SERVICES
from backend.schemas import (
    Choice,
    InputSchema,
    OutputSchema,
    PageQuerySchema,
    PhoneNumber,
    Text,
    page_of,
)

#: Editions of the ASAM Criteria a level may be given in.
ASAM_EDITIONS = ("3rd", "4th")


class ProgramFieldsSchema(InputSchema):
    name = Text(validate=validate.Length(min=1, max=200))
    service = fields.String(validate=validate.OneOf(SERVICES))
    asam_level = fields.String(allow_none=True, validate=validate.Length(min=1, max=10),
                               metadata={"description": "e.g. `1`, `2.1`, `3.7`."})
    asam_edition = Choice("AsamEdition", ASAM_EDITIONS, allow_none=True)
    phone = PhoneNumber(allow_none=True)
    address = fields.String(allow_none=True, validate=validate.Length(max=300))
    accepting_patients = fields.Boolean()
    external = fields.Boolean(metadata={"description": "Outside the hospital's SUD program: handoffs need a "
                                                       "42 CFR Part 2 consent."})


class ProgramCreateSchema(ProgramFieldsSchema):
    name = Text(required=True, validate=validate.Length(min=1, max=200))
    service = fields.String(required=True, validate=validate.OneOf(SERVICES))
    accepting_patients = fields.Boolean(required=True)
    external = fields.Boolean(required=True)


class ProgramSchema(OutputSchema):
    id = fields.UUID(required=True)
    name = fields.String(required=True)
    service = fields.String(required=True)
    asam_level = fields.String(allow_none=True, required=True)
    asam_edition = Choice("AsamEdition", ASAM_EDITIONS, allow_none=True, required=True)
    phone = fields.String(allow_none=True, required=True)
    address = fields.String(allow_none=True, required=True)
    accepting_patients = fields.Boolean(required=True)
    external = fields.Boolean(required=True)
    version = fields.Integer(required=True)


class ProgramQuerySchema(PageQuerySchema):
    service = fields.String(validate=validate.OneOf(SERVICES))
    accepting_patients = fields.Boolean()


ProgramPageSchema = page_of(ProgramSchema, "ProgramPageSchema")

"""The programs directory: the list, adding a program and changing one — the API's program
fields, through `backend.programs.service` as `POST /api/v1/programs` and `PATCH
/api/v1/programs/{id}` call it.

An edit carries the version the form was opened at (the API's `If-Match`): when someone saved
the program meanwhile nothing is written, and the page shows their version beside the input
kept, to be saved again on purpose.
"""

from __future__ import annotations

import uuid

from flask import flash, redirect, request, url_for

from backend import etag
from backend.auth.access import allow
from backend.auth.models import Role
from backend.console import bp, forms
from backend.console.views import page, refused
from backend.errors import Problem
from backend.programs import service as programs
from backend.programs.models import SERVICES, Program
from backend.programs.schemas import (
    ProgramCreateSchema,
    ProgramFieldsSchema,
    ProgramSchema,
)
from backend.programs.scopes import PROGRAMS

SERVICE_LABELS = {
    "otp": "Opioid treatment program (OTP)", "obot": "Office-based opioid treatment (OBOT)",
    "iop": "Intensive outpatient (IOP)", "residential": "Residential", "withdrawal_management":
    "Withdrawal management", "recovery_center": "Recovery community center", "harm_reduction": "Harm reduction",
    "recovery_housing": "Recovery housing", "other": "Other"}
assert set(SERVICE_LABELS) == set(SERVICES)
EDITIONS = [("", "Not given"), ("3rd", "3rd edition"), ("4th", "4th edition")]
TEXT_FIELDS = ("name", "service", "asam_level", "asam_edition", "phone", "address")
FLAGS = ("accepting_patients", "external")
#: The directory is short (the hospital's community partners): one page, as the handoff form lists it.
LIMIT = 200


def _form() -> dict:
    form = {name: request.form.get(name, "").strip() for name in TEXT_FIELDS}
    form.update({flag: request.form.get(flag) == "yes" for flag in FLAGS})
    return form


def _form_of(program: Program) -> dict:
    return {**{name: getattr(program, name) or "" for name in TEXT_FIELDS},
            **{flag: getattr(program, flag) for flag in FLAGS}, "version": program.version}


@bp.route("/programs")
@allow(Role.ADMIN)
def programs_directory():
    listed, _ = programs.list_programs(service=None, accepting=None, cursor=None, limit=LIMIT)
    return page("admin_programs.html", programs=listed, services=SERVICE_LABELS)


def _program_form(status: int = 200, **context):
    return page("admin_program.html", status, services=SERVICE_LABELS, editions=EDITIONS, **context)


@bp.route("/programs/new")
@allow(Role.ADMIN)
def new_program():
    return _program_form(form={"service": "", "accepting_patients": True, "external": True})


@bp.route("/programs", methods=["POST"])
@allow(Role.ADMIN)
def create_program():
    form = _form()
    data = {name: value for name, value in form.items() if value != ""}
    try:
        fields = forms.load(ProgramCreateSchema(), data)
        program = programs.create_program(fields=fields)
    except forms.FormErrors as invalid:
        return _program_form(422, form=form, errors=invalid.errors)
    except Problem as problem:
        refused(problem)
        return _program_form(problem.code, form=form, errors=forms.problem_errors(problem))
    flash(f"Added {program.name} to the directory.")
    return redirect(url_for("console.programs_directory"))


@bp.route("/programs/<uuid:program_id>")
@allow(Role.ADMIN)
def program(program_id: uuid.UUID):
    record = PROGRAMS.load_or_404(program_id)
    return _program_form(program=record, form=_form_of(record))


@bp.route("/programs/<uuid:program_id>", methods=["POST"])
@allow(Role.ADMIN)
def change_program(program_id: uuid.UUID):
    record = PROGRAMS.load_or_404(program_id)
    form = {**_form(), "version": request.form.get("version", "")}
    data = {name: value if value != "" else None for name, value in form.items() if name != "version"}
    try:
        fields = forms.load(ProgramFieldsSchema(), data)
        if form["version"] != str(record.version):
            raise Problem(412, "Someone saved this program since you opened it. Nothing was saved: their "
                               "version is shown; make your change again on it if it still holds.")
        changes = {name: value for name, value in fields.items() if getattr(record, name) != value}
        if changes:
            with etag.written_unless_changed(record, current=lambda: ProgramSchema().dump(record)):
                programs.update_program(program=record, changes=changes)
    except forms.FormErrors as invalid:
        return _program_form(422, program=record, form=form, errors=invalid.errors)
    except Problem as problem:
        refused(problem)
        record = PROGRAMS.load_or_404(program_id)
        stale = problem.code == 412
        # The current version's number goes with the kept input: saving again is a choice made on it.
        return _program_form(problem.code, program=record, form={**form, "version": record.version},
                             errors=forms.problem_errors(problem), saved=_form_of(record) if stale else None)
    flash(f"Saved {record.name}." if changes else f"Nothing changed in {record.name}.")
    return redirect(url_for("console.programs_directory"))

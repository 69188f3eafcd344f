"""Message templates: the list, adding one and changing one, with the privacy and segment check
shown on save — through `backend.outreach.templates` as the API's `POST` and `PATCH
/api/v1/message-templates` call it, so the console refuses exactly what the API refuses.

The service decides; this module only explains its decision: which words of the text reveal the
service, by the language whose list names them (every language's list applies to every text),
and how many SMS segments the text takes as sent, with realistic values and the opt-out hint of
its language.
"""

from __future__ import annotations

import re
import uuid

from flask import flash, get_flashed_messages, redirect, request, url_for

from backend.auth.access import allow
from backend.auth.models import Role
from backend.console import bp, forms
from backend.console.views import page, refused
from backend.errors import Problem
from backend.outreach import languages, privacy, segments
from backend.outreach import templates as message_templates
from backend.outreach.schemas import TemplateCreateSchema, TemplateUpdateSchema
from backend.outreach.scopes import TEMPLATES

LANGUAGE_NAMES = {"en": "English", "es": "Spanish"}
FIELDS = ("name", "body", "language")
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")
_TYPED_WORD = re.compile(r"\w+(?:[-']\w+)*")
#: The flash category that carries a saved template's id to the page shown after the save.
SAVED = "template_saved"


def language_name(tag: str) -> str:
    name = LANGUAGE_NAMES.get(languages.primary(tag))
    return f"{name} ({tag})" if name and tag != languages.primary(tag) else name or tag


def check_of(*, name: str, body: str, language: str) -> dict:
    """What the save's check saw in `body`: the revealing words by the language whose list names
    them (with the words as typed), and the text as sent with its segments."""
    text = _PLACEHOLDER.sub(" ", body)
    found = privacy.revealing_words(text)
    typed = {}
    for word in dict.fromkeys(_TYPED_WORD.findall(text)):
        for term in privacy.revealing_words(word):
            typed.setdefault(term, []).append(word)
    by_language = [{"name": LANGUAGE_NAMES.get(code, code), "words": [
        {"term": term, "typed": [w for w in typed.get(term, []) if w.lower() != term]}
        for term in found if term in spoken.revealing]} for code, spoken in languages.LANGUAGES.items()]
    written = languages.canonical(language) if languages.of(language) else languages.FALLBACK
    sample = message_templates.sample(name=name, body=body, language=written)
    return {"languages": by_language, "reveals": bool(found), "sample": sample, "segments": segments.count(sample),
            "encoding": segments.encoding(sample), "max_segments": message_templates.MAX_SEGMENTS,
            "hint": languages.written_in(written).opt_out_hint}


def _sample_of(template) -> dict:
    text = message_templates.sample(name=template.name, body=template.body, language=template.language)
    return {"sample": text, "segments": segments.count(text), "encoding": segments.encoding(text)}


def _templates_page(status: int = 200, **context):
    listed = message_templates.list_all()
    saved_id = next(iter(get_flashed_messages(category_filter=[SAVED])), None)
    saved = next((t for t in listed if str(t.id) == saved_id), None)
    context.setdefault("form", {"name": "", "body": "", "language": languages.FALLBACK})
    return page("admin_templates.html", status, templates=listed, saved=saved, language_name=language_name,
                saved_check=check_of(name=saved.name, body=saved.body, language=saved.language) if saved else None,
                samples={t.id: _sample_of(t) for t in listed}, **_form_context(), **context)


def _form_context() -> dict:
    return {"placeholders": sorted(message_templates.PLACEHOLDERS), "spoken": LANGUAGE_NAMES,
            "max_segments": message_templates.MAX_SEGMENTS}


def _form() -> dict:
    return {name: request.form.get(name, "") for name in FIELDS}


def _refused_check(form: dict) -> dict | None:
    """The check to show beside a refused form (when there is a text to check)."""
    if not form["body"].strip():
        return None
    return check_of(name=form["name"].strip(), body=form["body"].strip(), language=form["language"].strip() or "en")


@bp.route("/templates")
@allow(Role.ADMIN)
def message_templates_page():
    return _templates_page()


@bp.route("/templates", methods=["POST"])
@allow(Role.ADMIN)
def create_template():
    form = _form()
    data = {"name": form["name"], "body": form["body"], "language": form["language"].strip() or languages.FALLBACK}
    try:
        fields = forms.load(TemplateCreateSchema(), data)
        template = message_templates.create(**fields)
    except forms.FormErrors as invalid:
        return _templates_page(422, form=form, errors=invalid.errors, check=_refused_check(form))
    except Problem as problem:
        refused(problem)
        return _templates_page(problem.code, form=form, errors=_errors(problem),
                               check=_refused_check(form))
    return _saved(template)


def _errors(problem: Problem) -> dict[str, list[str]]:
    errors = forms.problem_errors(problem)
    if problem.problem_type == "message-privacy":
        errors["_form"] = ["Not saved: the text would reveal the service to anyone who sees the phone. "
                           "Reword the words the check lists."]
    return errors


def _saved(template):
    flash(str(template.id), SAVED)
    return redirect(url_for("console.message_templates_page"))


@bp.route("/templates/<uuid:template_id>")
@allow(Role.ADMIN)
def template(template_id: uuid.UUID):
    record = TEMPLATES.load_or_404(template_id)
    return _template_page(record, form={name: getattr(record, name) for name in FIELDS},
                          check=check_of(name=record.name, body=record.body, language=record.language))


def _template_page(record, status: int = 200, **context):
    return page("admin_template.html", status, message_template=record, language_name=language_name, **_form_context(),
                **context)


@bp.route("/templates/<uuid:template_id>", methods=["POST"])
@allow(Role.ADMIN)
def change_template(template_id: uuid.UUID):
    record = TEMPLATES.load_or_404(template_id)
    form = _form()
    data = {"name": form["name"], "body": form["body"], "language": form["language"].strip() or record.language}
    try:
        fields = forms.load(TemplateUpdateSchema(), data)
        changes = {name: value for name, value in fields.items() if getattr(record, name) != value}
        if changes:
            message_templates.update(template=record, changes=changes)
    except forms.FormErrors as invalid:
        return _template_page(record, 422, form=form, errors=invalid.errors, check=_refused_check(form))
    except Problem as problem:
        refused(problem)
        record = TEMPLATES.load_or_404(template_id)
        return _template_page(record, problem.code, form=form, errors=_errors(problem),
                              check=_refused_check(form))
    return _saved(record)

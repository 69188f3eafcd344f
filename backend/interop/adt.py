"""The hospital's ADT feed: HL7 v2 ER7 in (parsed with the `hl7` library), an ACK out.

`receive` never raises for what a message says: every body gets an ACK — `AA` (accepted, even
when nothing was done: an unknown MRN, a duplicate, an event Bridgeline does not act on; the
same ACK whatever happened, so that it never tells whether an MRN is on file), `AE`
(a field missing or impossible: the reason in MSA-3 and ERR) or `AR` (not an HL7 v2 message
Bridgeline can read, an unsupported message type, no MSH-10). Idempotent on MSH-10 per sender:
the first message with a control id claims it (`hl7_messages`, unique), a resent one gets the
stored ACK again and changes nothing.

What the events do (the guide has the tables):

- **A04 / A01** (ED registration / admission) of a patient on file (MRN in PID-3):
  * their open episode is at the ED or inpatient level and not yet discharged: the visit in
    progress (recorded, no alert);
  * their open episode is past discharge (or at the clinic or a program), or their last episode
    closed: **back in the ED**. The visit is marked `back_in_ed`; a closed last episode gets a
    new ED (or inpatient) episode opened by the interface account, with the last coach when
    still active; a task for the coach (clinic staff's when there is none) is due at once; the
    caseload ranks `back_in_ed` first until the coach reaches the patient; the review lists it.
  * a patient with no episode at all: the visit is recorded, no alert.
- **A03** (discharge) for a patient whose open episode is at the ED or inpatient level: the
  discharge (PV1-45) and disposition (PV1-36, `DISPOSITIONS`) are recorded through the same
  service the API uses (`cases.discharge`, so the check-in texts start); a discharge already
  recorded stays (the first record wins) and a different time becomes a task for clinic staff
  to check. The visit's discharge is recorded either way (the revisit measures read it).
- Unknown MRNs and duplicates (a visit or a discharge already recorded): `AA`, nothing created,
  counted (`bridgeline_hl7_messages{outcome=…}`).

Timestamps without an offset are the hospital's local time (`HL7_TIMEZONE`, default
`DEFAULT_TIMEZONE`). Every message touching a patient is an audit event (`hl7.receive`) by the
interface account, like a person's action; the services it calls audit their own writes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from zoneinfo import ZoneInfo

import hl7
import sqlalchemy as sa
from flask import current_app

from backend import metrics
from backend.audit import service as audit
from backend.auth.models import Role, User
from backend.cases import activities
from backend.cases import service as cases
from backend.cases.models import HOSPITAL_LEVELS, Disposition, Episode, Patient
from backend.database import utcnow
from backend.errors import Problem
from backend.extensions import db
from backend.interop.models import (
    Hl7Message,
    HospitalVisit,
    MessageOutcome,
    VisitSetting,
)

#: The application and facility Bridgeline names itself in its ACKs (MSH-3, MSH-4).
APPLICATION, FACILITY = "BRIDGELINE", "BRIDGELINE"

#: PV1-36 discharge disposition (HL7 table 0112, the UB-04 patient status codes) → Bridgeline's
#: `Disposition`. Local codes some EDs send are matched by name. Empty → `unknown`; anything
#: else → `other`.
DISPOSITIONS = {
    "01": Disposition.HOME, "06": Disposition.HOME, "08": Disposition.HOME, "50": Disposition.HOME,
    "02": Disposition.TRANSFERRED, "03": Disposition.TRANSFERRED, "04": Disposition.TRANSFERRED,
    "05": Disposition.TRANSFERRED, "43": Disposition.TRANSFERRED, "51": Disposition.TRANSFERRED,
    "61": Disposition.TRANSFERRED, "62": Disposition.TRANSFERRED, "63": Disposition.TRANSFERRED,
    "64": Disposition.TRANSFERRED, "65": Disposition.TRANSFERRED, "66": Disposition.TRANSFERRED,
    "70": Disposition.TRANSFERRED,
    "07": Disposition.AGAINST_MEDICAL_ADVICE, "AMA": Disposition.AGAINST_MEDICAL_ADVICE,
    "09": Disposition.ADMITTED,
    "20": Disposition.DECEASED, "40": Disposition.DECEASED, "41": Disposition.DECEASED,
    "42": Disposition.DECEASED,
    "LWBS": Disposition.ELOPED, "ELOPED": Disposition.ELOPED, "ELOPE": Disposition.ELOPED,
    "LEFT WITHOUT BEING SEEN": Disposition.ELOPED,
}
#: ICD-10-CM codes that make a visit an overdose: T40.x, poisoning by narcotics and
#: psychodysleptics (opioids T40.0–T40.4 and T40.6, cocaine T40.5, …), in PV2-3 (admit reason)
#: or any DG1-3 (diagnosis); dots and case do not matter (`T40.1X1A`, `t401x1a`).
OVERDOSE_CODE_PREFIX = "T40"
#: The ADT events acted upon; other ADT events are acknowledged (AA) and ignored.
REGISTRATIONS, DISCHARGES = ("A01", "A04"), ("A03",)

#: HL7 table 0357 error codes used in ERR-3.
REQUIRED_FIELD_MISSING, DATA_TYPE_ERROR = "101", "102"
UNSUPPORTED_MESSAGE_TYPE, INTERNAL_ERROR = "200", "207"
_ERROR_TEXT = {REQUIRED_FIELD_MISSING: "Required field missing", DATA_TYPE_ERROR: "Data type error",
               UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type", INTERNAL_ERROR: "Application internal error"}

BACK_IN_ED_TASK = "Back in the emergency department: reach out today"
DISCHARGE_DIFFERS_TASK = "The hospital feed reports another discharge time than the one recorded: check the episode"


class MessageError(Exception):
    """A message Bridgeline can read but not accept (AE), or cannot read (AR)."""

    def __init__(self, reason: str, *, code: str = REQUIRED_FIELD_MISSING, ack_code: str = "AE"):
        super().__init__(reason)
        self.reason, self.code, self.ack_code = reason, code, ack_code


@dataclasses.dataclass
class Result:
    outcome: MessageOutcome
    patient_id: object = None
    note: str = ""


# --- receiving ------------------------------------------------------------------------------

def receive(body: bytes, *, user: User) -> str:
    """Handle one ER7 message from the interface engine; the ACK to answer (ER7)."""
    message, problem = _parse(body)
    if message is None:
        metrics.count_hl7_message("unreadable", MessageOutcome.REJECTED)
        return _bare_ack("AR", problem)
    control_id, sender = _text(message, "MSH.10"), f"{_text(message, 'MSH.3')}|{_text(message, 'MSH.4')}"[:200]
    message_type = _segment_field(message, "MSH", 9)[:40]
    if not control_id:
        metrics.count_hl7_message(message_type, MessageOutcome.REJECTED)
        return _ack(message, "AR", MessageError("MSH-10 (message control id) is missing.", ack_code="AR"))
    control_id = control_id[:200]
    stored = _stored_ack(sender, control_id)
    if stored is not None:
        metrics.count_hl7_message(message_type, "resent")
        return stored
    try:
        with db.session.begin_nested():  # a concurrent copy of the message loses here
            record = Hl7Message(sender=sender, control_id=control_id, message_type=message_type,
                                received_by_id=user.id, outcome="processing", ack="")
            db.session.add(record)
    except sa.exc.IntegrityError:
        metrics.count_hl7_message(message_type, "resent")
        return _stored_ack(sender, control_id) or _ack(message, "AA")
    try:
        with db.session.begin_nested():  # an error undoes the message's work, never its record
            result = _process(message, user=user)
        ack = _ack(message, "AA")  # the same for every outcome: an ACK never tells whether an MRN is on file
    except MessageError as error:
        result, ack = Result(MessageOutcome.ERROR if error.ack_code == "AE" else MessageOutcome.REJECTED), \
            _ack(message, error.ack_code, error)
        result.patient_id = getattr(error, "patient_id", None)
    except Problem as problem:  # a rule of the domain refused it (e.g. a discharge before arrival)
        result, ack = Result(MessageOutcome.ERROR), _ack(message, "AE", MessageError(problem.description,
                                                                                     code=DATA_TYPE_ERROR))
    record.outcome, record.ack, record.patient_id = str(result.outcome), ack, result.patient_id
    db.session.flush()
    if result.patient_id is not None:
        audit.record("hl7.receive", resource_type="hl7_message", resource_id=record.id,
                     patient_ids=[result.patient_id], actor=user,
                     details={"type": message_type, "outcome": str(result.outcome)})
    metrics.count_hl7_message(message_type, result.outcome)
    return ack


def _stored_ack(sender: str, control_id: str) -> str | None:
    return db.session.scalar(sa.select(Hl7Message.ack).where(Hl7Message.sender == sender,
                                                             Hl7Message.control_id == control_id))


def _parse(body: bytes):
    """The parsed message, or (None, why not)."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else str(body)
    text = text.strip().strip("\x0b\x1c").strip()  # MLLP framing, if the engine left it on
    text = text.replace("\r\n", "\r").replace("\n", "\r")
    if not text.startswith("MSH") or len(text) < 8:
        return None, "Not an HL7 v2 message: the body must start with an MSH segment."
    try:
        message = hl7.parse(text)
        message.segment("MSH")
    except Exception:  # noqa: BLE001 — whatever the library finds wrong, the answer is AR
        return None, "The message could not be parsed as HL7 v2 ER7."
    return message, None


def _segment_field(message, segment: str, number: int) -> str:
    """A whole field, components and all (`ADT^A04^ADT_A01`), as text ('' when absent)."""
    try:
        return str(message.segment(segment)[number]).strip()
    except Exception:  # noqa: BLE001
        return ""


def _text(message, key: str) -> str:
    """A field or component as text ('' when absent)."""
    try:
        return str(message[key]).strip()
    except Exception:  # noqa: BLE001 — absent segments, fields and components read as empty
        return ""


# --- what each event does -----------------------------------------------------------------------

def _process(message, *, user: User) -> Result:
    kind, event = _text(message, "MSH.9.1"), _text(message, "MSH.9.2") or _text(message, "EVN.1")
    if kind != "ADT":
        raise MessageError(f"Only ADT messages are read here, not {kind or 'an unnamed type'}.",
                           code=UNSUPPORTED_MESSAGE_TYPE, ack_code="AR")
    if event not in REGISTRATIONS + DISCHARGES:
        return Result(MessageOutcome.IGNORED, note=f"ADT {event or '(no event)'} is not acted upon.")
    mrn = _mrn(message)
    if not mrn:
        raise MessageError("PID-3 (the patient's MRN) is missing.")
    # What a message must carry is checked before the patient is looked up, so that an error
    # never tells an MRN on file from one that is not.
    if event in DISCHARGES and _moment(message, "PV1.45") is None:
        raise MessageError("PV1-45 (discharge date/time) is missing.")
    for key in ("PV1.44", "EVN.2", "MSH.7"):
        _moment(message, key)
    patient = db.session.scalar(sa.select(Patient).where(Patient.mrn == mrn))
    if patient is None:
        return Result(MessageOutcome.UNKNOWN_PATIENT, note="Patient not on file: nothing recorded.")
    try:
        result = _registration(message, event, patient, user) if event in REGISTRATIONS \
            else _discharge(message, patient, user)
    except MessageError as error:
        error.patient_id = patient.id
        raise
    result.patient_id = patient.id
    return result


def _registration(message, event: str, patient: Patient, user: User) -> Result:
    registered_at = _moment(message, "PV1.44") or _moment(message, "EVN.2") or _moment(message, "MSH.7", required=True)
    setting = _setting(message, default=VisitSetting.INPATIENT if event == "A01" else VisitSetting.EMERGENCY_DEPARTMENT)
    visit_number = _text(message, "PV1.19.1")[:64] or None
    if _known_visit(patient.id, visit_number, registered_at) is not None:
        return Result(MessageOutcome.DUPLICATE, note="This visit is already recorded.")
    overdose = _overdose(message)
    visit = HospitalVisit(patient_id=patient.id, visit_number=visit_number, setting=str(setting),
                          registered_at=registered_at, overdose=overdose)
    episodes = db.session.scalars(sa.select(Episode).where(Episode.patient_id == patient.id)
                                  .order_by(Episode.opened_at.desc(), Episode.id).limit(1)).all()
    last = episodes[0] if episodes else None
    if last is not None and last.is_open:
        last = cases.lock_episode(last.id)
    if last is None:
        db.session.add(visit)
        db.session.flush()
        return Result(MessageOutcome.PROCESSED, note="Visit recorded.")
    if last.is_open and last.level in HOSPITAL_LEVELS and last.discharged_at is None:
        visit.episode_id = last.id  # the visit in progress, which the open episode already follows
        db.session.add(visit)
        db.session.flush()
        return Result(MessageOutcome.PROCESSED, note="Visit recorded on the open episode.")
    episode = last if last.is_open else cases.open_episode(
        patient=patient, level=str(setting), presenting_reason="overdose" if overdose else "other",
        arrived_at=registered_at, coach_id=_active_coach_id(last.coach_id), flags={}, actor=user)
    task = activities.create_system_task(episode=episode, title=BACK_IN_ED_TASK, due_at=utcnow())
    visit.episode_id, visit.back_in_ed, visit.task_id = episode.id, True, task.id
    db.session.add(visit)
    db.session.flush()
    audit.record("episode.back_in_ed", resource_type="episode", resource_id=episode.id,
                 patient_ids=[patient.id], details={"visit_id": str(visit.id), "task_id": str(task.id)})
    return Result(MessageOutcome.PROCESSED, note="Back in the ED: the coach is told.")


def _discharge(message, patient: Patient, user: User) -> Result:
    discharged_at = _moment(message, "PV1.45")
    if discharged_at is None:
        raise MessageError("PV1-45 (discharge date/time) is missing.")
    disposition = disposition_of(_text(message, "PV1.36"))
    visit_number = _text(message, "PV1.19.1")[:64] or None
    visit = _known_visit(patient.id, visit_number, None)
    episode_id = cases.open_episode_id(patient.id)
    episode = cases.lock_episode(episode_id) if episode_id is not None else None
    if episode is not None and (episode.level not in HOSPITAL_LEVELS or (
            visit is not None and visit.episode_id not in (None, episode.id)) or (
            episode.discharged_at is not None and visit is not None and episode.discharged_at < visit.registered_at)):
        episode = None  # this discharge ends a later visit (or another episode's): the episode's own stays
    result = Result(MessageOutcome.PROCESSED, note="Discharge recorded.")
    if episode is not None:
        if episode.discharged_at is None:
            cases.discharge(episode=episode, discharged_at=discharged_at, actor=user, disposition=disposition)
        elif episode.discharged_at == discharged_at:
            result = Result(MessageOutcome.DUPLICATE, note="This discharge is already recorded.")
        else:
            activities.create_system_task(episode=episode, title=DISCHARGE_DIFFERS_TASK, due_at=utcnow(),
                                          for_clinic_staff=True)
            result = Result(MessageOutcome.DISCHARGE_DIFFERS,
                            note="A discharge was already recorded; it stays, and clinic staff are asked to check.")
    elif visit is not None and visit.discharged_at is not None:
        result = Result(MessageOutcome.DUPLICATE, note="This discharge is already recorded.")
    if visit is None:
        registered_at = _moment(message, "PV1.44") or discharged_at
        visit = HospitalVisit(patient_id=patient.id, visit_number=visit_number, registered_at=registered_at,
                              setting=str(_setting(message, default=VisitSetting.EMERGENCY_DEPARTMENT)),
                              overdose=_overdose(message), episode_id=episode.id if episode is not None else None)
        db.session.add(visit)
    if visit.discharged_at is None:
        visit.discharged_at, visit.disposition = discharged_at, str(disposition)
    db.session.flush()
    return result


def _known_visit(patient_id, visit_number: str | None, registered_at: dt.datetime | None) -> HospitalVisit | None:
    """The visit a message is about: by PV1-19 when sent; else (a registration) the same time,
    or (a discharge) the patient's latest visit not yet discharged."""
    stmt = sa.select(HospitalVisit).where(HospitalVisit.patient_id == patient_id)
    if visit_number is not None:
        stmt = stmt.where(HospitalVisit.visit_number == visit_number)
    elif registered_at is not None:
        stmt = stmt.where(HospitalVisit.registered_at == registered_at)
    else:
        stmt = stmt.where(HospitalVisit.discharged_at.is_(None))
    return db.session.scalars(stmt.order_by(HospitalVisit.registered_at.desc()).limit(1)).first()


def _active_coach_id(coach_id):
    if coach_id is None:
        return None
    coach = db.session.get(User, coach_id)
    return coach.id if coach is not None and coach.active and coach.role == Role.COACH else None


def _mrn(message) -> str:
    """PID-3: the repetition whose identifier type (CX-5) is `MR`, else the first."""
    try:
        repetitions = message.segment("PID")[3]
    except Exception:  # noqa: BLE001
        return ""
    values = []
    for repetition in repetitions:
        parts = [str(part).strip() for part in repetition] if isinstance(repetition, hl7.Repetition) \
            else [str(repetition).strip()]
        values.append(parts)
    for parts in values:
        if len(parts) >= 5 and parts[4].upper() == "MR" and parts[0]:
            return parts[0][:64]
    return values[0][0][:64] if values and values[0] and values[0][0] else ""


def _setting(message, *, default: VisitSetting) -> VisitSetting:
    return {"E": VisitSetting.EMERGENCY_DEPARTMENT, "I": VisitSetting.INPATIENT}.get(
        _text(message, "PV1.2").upper()[:1], default)


def disposition_of(code: str) -> Disposition:
    """PV1-36 → a Disposition (`DISPOSITIONS`; empty → unknown, unmapped → other)."""
    code = code.split("^")[0].strip().upper()
    if not code:
        return Disposition.UNKNOWN
    return DISPOSITIONS.get(code, DISPOSITIONS.get(code.zfill(2), Disposition.OTHER))


def _overdose(message) -> bool:
    codes = [_text(message, "PV2.3.1")]
    try:
        codes += [str(segment[3][0][0]) if isinstance(segment[3][0], hl7.Repetition) else str(segment[3][0])
                  for segment in message.segments("DG1")]
    except Exception:  # noqa: BLE001 — no DG1 segments
        pass
    return any(code.replace(".", "").strip().upper().startswith(OVERDOSE_CODE_PREFIX) for code in codes)


_TS = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(?:(\d{2})(?:\.\d+)?)?)?([+-]\d{4})?$")


def _moment(message, key: str, *, required: bool = False) -> dt.datetime | None:
    """An HL7 TS/DTM field as a UTC instant (no offset: the hospital's zone, `HL7_TIMEZONE`)."""
    value = _text(message, f"{key}.1") or _text(message, key)
    if not value:
        if required:
            raise MessageError(f"{key.replace('.', '-')} is missing.")
        return None
    match = _TS.match(value)
    try:
        if match is None:
            raise ValueError(value)
        year, month, day, hour, minute, second, offset = match.groups()
        moment = dt.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
        if offset:
            sign = 1 if offset[0] == "+" else -1
            zone = dt.timezone(sign * dt.timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])))
        else:
            zone = ZoneInfo(current_app.config.get("HL7_TIMEZONE") or current_app.config["DEFAULT_TIMEZONE"])
        return moment.replace(tzinfo=zone).astimezone(dt.timezone.utc)
    except ValueError:
        raise MessageError(f"{key.replace('.', '-')} is not an HL7 date/time (YYYYMMDDHHMM[SS][+ZZZZ]).",
                           code=DATA_TYPE_ERROR) from None


# --- acknowledgements ---------------------------------------------------------------------------

def _escape(text: str) -> str:
    """Text safe inside an ER7 field (HL7 escape sequences for the delimiters)."""
    text = text.replace("\\", "\\E\\")
    for char, sequence in (("|", "\\F\\"), ("^", "\\S\\"), ("~", "\\R\\"), ("&", "\\T\\")):
        text = text.replace(char, sequence)
    return " ".join(text.split())[:200]


def _ack(message, code: str, error: MessageError | None = None, note: str = "") -> str:
    """The ACK of `message` (MSH from the library's `create_ack`), MSA-3 with the reason, and an
    ERR segment (ERR-3 code from table 0357, ERR-4 severity, ERR-8 the reason) when not AA."""
    try:
        ack = message.create_ack(code, message_id=hl7.generate_message_control_id(),
                                 application=APPLICATION, facility=FACILITY)
        msh = str(ack.segment("MSH"))
    except Exception:  # noqa: BLE001 — an MSH too broken to answer from: a bare one
        return _bare_ack(code, error.reason if error else note, control_id=_text(message, "MSH.10"))
    return _assemble(msh, code, _text(message, "MSH.10"), error, note)


def _bare_ack(code: str, reason: str | None, *, control_id: str = "") -> str:
    """An ACK for a body with no usable MSH: Bridgeline's own header."""
    stamp = utcnow().strftime("%Y%m%d%H%M%S+0000")
    msh = f"MSH|^~\\&|{APPLICATION}|{FACILITY}|||{stamp}||ACK|{hl7.generate_message_control_id()}|P|2.5"
    return _assemble(msh, code, control_id, MessageError(reason or "", ack_code=code,
                                                          code=UNSUPPORTED_MESSAGE_TYPE), "")


def _assemble(msh: str, code: str, control_id: str, error: MessageError | None, note: str) -> str:
    reason = error.reason if error is not None else note
    segments = [msh, f"MSA|{code}|{_escape(control_id)}|{_escape(reason)}"]
    if error is not None and code != "AA":
        segments.append(f"ERR|||{error.code}^{_ERROR_TEXT[error.code]}^HL70357|E||||{_escape(error.reason)}")
    return "\r".join(segments) + "\r"

"""The outcomes report: the program measures (`backend.reports.measures`) over the episodes
discharged in a period.

The stored facts are brought up to date first (`backend.reports.refresh`: every change committed
before the report counts). Then one aggregate query, whatever the number of episodes: the
database reads each population's facts (episodes, handoffs, texts) for the period, classifies
every member as of `now` and counts; Python only assembles the answer.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
import zoneinfo

import sqlalchemy as sa
from flask import current_app

from backend.audit import service as audit
from backend.database import utcnow
from backend.extensions import db
from backend.outreach import languages
from backend.reports import refresh
from backend.reports.facts import DAY, HOUR, kits_distributed
from backend.reports.measures import (
    MEASURES,
    MET,
    MISSED,
    PENDING,
    POPULATIONS,
    Measure,
)

COHORT = ("Episodes opened at the ED or inpatient level whose discharge falls in the period (dates in the "
          "program's time zone, both included).")


def outcomes(*, start: dt.date, end: dt.date, coach_id: uuid.UUID | None = None,
             presenting_reason: str | None = None, now: dt.datetime | None = None) -> dict:
    """The report for episodes discharged from `start` to `end` (both included)."""
    now = now or utcnow()
    if db.engine.dialect.name == "postgresql":
        # The sorts of a recount, and the median's, run over every episode of the period: in
        # memory, not spilled to disk at the 4 MB default.
        db.session.execute(sa.text("SET LOCAL work_mem = '32MB'"))
    refresh.refresh()
    zone = zoneinfo.ZoneInfo(current_app.config["DEFAULT_TIMEZONE"])
    period = (_midnight(start, zone), _midnight(end + dt.timedelta(days=1), zone))
    members = {population: _members(table, period, coach_id, presenting_reason, now)
               for population, table in POPULATIONS.items()}
    figures = _tally(members)
    episodes = figures.pop("episodes")
    measures = {key: {**figures[key], "unit": measure.unit, "population": measure.population,
                      "window": measure.window, "definition": measure.definition, "source": measure.source,
                      "by_language": _by_language(measure, members[measure.population])
                      if measure.by_language else None}
                for key, measure in MEASURES.items()}
    kits = _kits(period, coach_id, presenting_reason)
    texts = members["texts"]
    fell_back = db.session.scalar(sa.select(sa.func.count()).select_from(texts).where(texts.c.fell_back.is_(True)))
    audit.record("report.outcomes", resource_type="report", details={
        "from": start.isoformat(), "to": end.isoformat(), "coach_id": str(coach_id) if coach_id else None,
        "presenting_reason": presenting_reason, "episodes": episodes})
    return {"from": start, "to": end, "timezone": zone.key, "as_of": now,
            "filters": {"coach_id": coach_id, "presenting_reason": presenting_reason},
            "cohort": {"episodes": episodes, "definition": COHORT},
            "measures": measures,
            "kits_distributed": kits,
            "texts": {"fell_back_to_english": fell_back}}


KITS_DEFINITION = ("Naloxone kits given in the period (by when they were given, dates in the program's time zone, "
                   "whatever the episode's discharge), to the patient or a support person, by setting and by "
                   "recipient, with their doses. A count: it has no denominator, and nothing is pending.")
KITS_SOURCE = ("product.md (the state's monthly count of kits distributed); the Massachusetts community naloxone "
               "program's reporting by setting and recipient.")


def _kits(period: tuple[dt.datetime, dt.datetime], coach_id, presenting_reason) -> dict:
    """Kits distributed in the period, from the naloxone log (one grouped statement)."""
    rows = db.session.execute(kits_distributed(period, coach_id, presenting_reason)).all()
    by_setting: dict[str, int] = {}
    by_recipient: dict[str, int] = {}
    for row in rows:
        by_setting[row.setting] = by_setting.get(row.setting, 0) + row.kits
        by_recipient[row.recipient] = by_recipient.get(row.recipient, 0) + row.kits
    return {"kits": sum(row.kits for row in rows), "doses": int(sum(row.doses for row in rows)),
            "window": "given in the period", "definition": KITS_DEFINITION, "source": KITS_SOURCE,
            "by_setting": by_setting, "by_recipient": by_recipient,
            "by_setting_and_recipient": [{"setting": row.setting, "recipient": row.recipient, "kits": row.kits,
                                          "doses": int(row.doses)} for row in rows]}


def _by_language(measure: Measure, members: sa.Subquery) -> dict[str, dict]:
    """The measure's figures per language of its members (`es-MX` counts as `es`)."""
    classified = sa.select(members.c.language, measure.classify(members.c).label("status")).subquery()
    rows = db.session.execute(sa.select(
        classified.c.language, *(sa.func.count(sa.case((classified.c.status == status, 1))) for status in
                                 (MET, MISSED, PENDING))).group_by(classified.c.language)).all()
    tally: dict[str, list[int]] = {}
    for language, *counts in rows:
        total = tally.setdefault(languages.primary(language), [0, 0, 0])
        total[:] = [a + b for a, b in zip(total, counts, strict=True)]
    return {language: _rate(*counts) for language, counts in sorted(tally.items()) if any(counts)}


def _rate(met: int, missed: int, pending: int) -> dict:
    denominator = met + missed
    return {"numerator": met, "denominator": denominator, "pending": pending,
            "rate": round(met / denominator, 4) if denominator else None}


def _midnight(day: dt.date, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), zone).astimezone(dt.timezone.utc)


def _members(table, period: tuple[dt.datetime, dt.datetime], coach_id: uuid.UUID | None,
             presenting_reason: str | None, now: dt.datetime) -> sa.Subquery:
    """A population's stored facts in the report (those of its episodes), with `now`."""
    stmt = sa.select(sa.literal(round(now.timestamp() * 1000), sa.BigInteger).label("now"), *table.__table__.c).where(
        table.discharged_at >= period[0], table.discharged_at < period[1])
    if coach_id is not None:
        stmt = stmt.where(table.coach_id == coach_id)
    if presenting_reason is not None:
        stmt = stmt.where(table.presenting_reason == presenting_reason)
    return stmt.subquery(f"{table.__tablename__}_in_period")


def _tally(populations: dict[str, sa.Subquery]) -> dict:
    """Every measure over its population's members, in one statement: {key: {numerator,
    denominator, pending, rate, value}}, and the number of episodes."""
    aggregates = []
    for population, members in populations.items():
        measures = [measure for measure in MEASURES.values() if measure.population == population]
        columns = [measure.classify(members.c).label(measure.key) for measure in measures]
        columns += [sa.case((measure.classify(members.c) == MET, measure.value(members.c)))
                    .label(f"{measure.key}__value") for measure in measures if measure.value is not None]
        classified = sa.select(*columns).cte(f"classified_{population}").prefix_with("MATERIALIZED")
        counts = [sa.func.count(sa.case((classified.c[measure.key] == status, 1))).label(f"{measure.key}__{status}")
                  for measure in measures for status in (MET, MISSED, PENDING)]
        counts += [_median(classified.c[f"{measure.key}__value"]).label(f"{measure.key}__median")
                   for measure in measures if measure.value is not None]
        if population == "episodes":
            counts.append(sa.func.count().label("episodes"))
        aggregates.append(sa.select(*counts).select_from(classified).subquery(f"tally_{population}"))
    first, *others = aggregates  # one row each: joined side by side
    stmt = sa.select(*(column for aggregate in aggregates for column in aggregate.c)).select_from(first)
    for other in others:
        stmt = stmt.join(other, sa.true())
    row = db.session.execute(stmt).one()._mapping
    return {"episodes": row["episodes"], **{key: _figures(measure, row) for key, measure in MEASURES.items()}}


def _median(values: sa.ColumnElement) -> sa.ScalarSelect:
    """The median of a column of a CTE, ignoring NULLs: the middle value, or the mean of the two
    middle ones (neither database has a median function in common)."""
    count = sa.select(sa.func.count(values)).scalar_subquery()
    middle = (sa.select(values.label("v")).where(values.is_not(None)).order_by(values)
              .limit(2 - count % 2).offset((count - 1) // 2).subquery())
    return sa.select(sa.func.avg(middle.c.v)).scalar_subquery()


def _figures(measure: Measure, row) -> dict:
    met, missed, pending = (int(row[f"{measure.key}__{status}"]) for status in (MET, MISSED, PENDING))
    median = row.get(f"{measure.key}__median")
    unit = UNITS.get(measure.unit, HOUR)
    return {**_rate(met, missed, pending), "value": round(float(median) / unit, 1) if median is not None else None}


#: A measure's value is kept in ms; reported in its unit.
UNITS = {"hours": HOUR, "days": DAY}


CSV_COLUMNS = ("measure", "population", "numerator", "denominator", "pending", "rate", "value", "unit", "window",
               "definition", "source", "from", "to", "timezone", "coach_id", "presenting_reason", "as_of")


def as_csv(report: dict) -> str:
    """The report as CSV: one row per measure, the period and filters repeated on each."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    common = {"from": report["from"].isoformat(), "to": report["to"].isoformat(), "timezone": report["timezone"],
              "coach_id": report["filters"]["coach_id"] or "",
              "presenting_reason": report["filters"]["presenting_reason"] or "",
              "as_of": report["as_of"].isoformat()}
    for key, figures in report["measures"].items():
        writer.writerow({"measure": key, **{name: "" if figures[name] is None else figures[name]
                                            for name in CSV_COLUMNS[1:11]}, **common})
        for language, by_language in (figures["by_language"] or {}).items():
            writer.writerow({"measure": f"{key}[{language}]", **{name: "" if figures[name] is None else figures[name]
                                                                 for name in CSV_COLUMNS[1:11]},
                             **{name: "" if value is None else value for name, value in by_language.items()},
                             **common})
    kits = report["kits_distributed"]
    described = {"population": "kits", "denominator": "", "pending": "", "rate": "", "unit": "doses",
                 "window": kits["window"], "definition": kits["definition"], "source": kits["source"]}
    writer.writerow({"measure": "kits_distributed", **described, "numerator": kits["kits"], "value": kits["doses"],
                     **common})
    for row in kits["by_setting_and_recipient"]:
        writer.writerow({"measure": f"kits_distributed[setting={row['setting']},recipient={row['recipient']}]",
                         **described, "numerator": row["kits"], "value": row["doses"], **common})
    return out.getvalue()

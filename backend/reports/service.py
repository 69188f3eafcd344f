"""The outcomes report: the program measures (`backend.reports.measures`) over the episodes
discharged in a period.

One aggregate query, whatever the number of episodes: the database classifies every member of
each population (episodes, handoffs, texts) and counts; Python only assembles the answer.
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
from backend.cases.models import HOSPITAL_LEVELS, Episode, LevelPeriod
from backend.database import utcnow
from backend.extensions import db
from backend.reports.measures import HOUR, MEASURES, MET, MISSED, PENDING, Measure, facts

COHORT = ("Episodes opened at the ED or inpatient level whose discharge falls in the period (dates in the "
          "program's time zone, both included).")


def outcomes(*, start: dt.date, end: dt.date, coach_id: uuid.UUID | None = None,
             presenting_reason: str | None = None, now: dt.datetime | None = None) -> dict:
    """The report for episodes discharged from `start` to `end` (both included)."""
    now = now or utcnow()
    zone = zoneinfo.ZoneInfo(current_app.config["DEFAULT_TIMEZONE"])
    cohort = _cohort(_midnight(start, zone), _midnight(end + dt.timedelta(days=1), zone), coach_id, presenting_reason)
    if db.engine.dialect.name == "postgresql":
        # Its sorts and hashes run over every episode, text and handoff of the period: in memory,
        # not spilled to disk at the 4 MB default (about 10% of the report's time).
        db.session.execute(sa.text("SET LOCAL work_mem = '32MB'"))
    figures = _tally(facts(cohort, now))
    episodes = figures.pop("episodes")
    measures = {key: {**figures[key], "unit": measure.unit, "population": measure.population,
                      "window": measure.window, "definition": measure.definition, "source": measure.source}
                for key, measure in MEASURES.items()}
    audit.record("report.outcomes", resource_type="report", details={
        "from": start.isoformat(), "to": end.isoformat(), "coach_id": str(coach_id) if coach_id else None,
        "presenting_reason": presenting_reason, "episodes": episodes})
    return {"from": start, "to": end, "timezone": zone.key, "as_of": now,
            "filters": {"coach_id": coach_id, "presenting_reason": presenting_reason},
            "cohort": {"episodes": episodes, "definition": COHORT},
            "measures": measures}


def _midnight(day: dt.date, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), zone).astimezone(dt.timezone.utc)


def _cohort(start: dt.datetime, end: dt.datetime, coach_id: uuid.UUID | None,
            presenting_reason: str | None) -> sa.Select:
    """The ids of the report's episodes."""
    stmt = sa.select(Episode.id).where(
        Episode.discharged_at >= start, Episode.discharged_at < end,
        sa.exists().where(LevelPeriod.episode_id == Episode.id, LevelPeriod.level.in_(HOSPITAL_LEVELS)))
    if coach_id is not None:
        stmt = stmt.where(Episode.coach_id == coach_id)
    if presenting_reason is not None:
        stmt = stmt.where(Episode.presenting_reason == presenting_reason)
    return stmt


def _tally(populations: dict[str, sa.CTE]) -> dict:
    """Every measure over its population's facts, in one statement: {key: {numerator,
    denominator, pending, rate, value}}, and the number of episodes."""
    aggregates = []
    for population, facts_ in populations.items():
        measures = [measure for measure in MEASURES.values() if measure.population == population]
        # A row may stand for several members (texts are counted by episode and status).
        weight = facts_.c.weight if "weight" in facts_.c else sa.literal(1, sa.Integer)
        columns = [weight.label("weight"), *(measure.classify(facts_.c).label(measure.key) for measure in measures)]
        columns += [sa.case((measure.classify(facts_.c) == MET, measure.value(facts_.c)))
                    .label(f"{measure.key}__value") for measure in measures if measure.value is not None]
        classified = sa.select(*columns).cte(f"classified_{population}").prefix_with("MATERIALIZED")
        counts = [sa.func.coalesce(sa.func.sum(sa.case((classified.c[measure.key] == status, classified.c.weight),
                                                       else_=0)), 0)
                  .label(f"{measure.key}__{status}") for measure in measures for status in (MET, MISSED, PENDING)]
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
    denominator = met + missed
    return {"numerator": met, "denominator": denominator, "pending": pending,
            "rate": round(met / denominator, 4) if denominator else None,
            "value": round(float(median) / HOUR, 1) if median is not None else None}


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
    return out.getvalue()

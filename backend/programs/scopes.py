"""Who sees which programs: every signed-in role sees the whole directory (it is no patient data)."""

from __future__ import annotations

import sqlalchemy as sa

from backend.auth.access import Scope
from backend.programs.models import Program

PROGRAMS = Scope(Program, "program", lambda user: sa.true())

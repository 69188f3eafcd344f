"""Flask extensions, created unbound and initialised in `create_app` (never import an app)."""

from __future__ import annotations

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from backend.database import Base
from backend.openapi import BridgelineApi

#: The database; models subclass `db.Model` (typed, on `backend.database.Base`).
db = SQLAlchemy(model_class=Base)
#: Alembic through Flask-Migrate; `flask --app backend db upgrade` is the release step.
migrate = Migrate()
#: OpenAPI generation and blueprint registration (flask-smorest).
api = BridgelineApi()

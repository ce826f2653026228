from flask_smorest import Blueprint
from sqlalchemy import text

from api.database import db

blp = Blueprint("health", __name__, description="Liveness and readiness")


@blp.route("/health")
@blp.doc(security=[])
def health():
    db().execute(text("SELECT 1"))
    return {"status": "ok"}

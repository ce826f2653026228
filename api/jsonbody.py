"""Request bodies in JSON, parsed by settlement.jsonsafe for every route: nesting bounded,
duplicate keys refused, NaN refused, each answered 400 with a problem naming why (never a
500 from a RecursionError)."""
from __future__ import annotations

import typing

import flask
from flask_smorest import Blueprint
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

from api.errors import Problem
from settlement import jsonsafe


class SafeJsonParser(FlaskParser):
    def _raw_load_json(self, req: flask.Request) -> typing.Any:
        if not is_json_request(req):
            return core.missing
        body = req.get_data(cache=True)
        if not body:
            return core.missing
        try:
            return jsonsafe.loads(body)
        except jsonsafe.JsonRefused as exc:
            raise Problem(400, "Bad Request", str(exc), [
                {"line": None, "field": None, "code": exc.code, "message": str(exc)}])


def install() -> None:
    """Every flask-smorest blueprint reads its JSON arguments through SafeJsonParser."""
    Blueprint.ARGUMENTS_PARSER = SafeJsonParser()

"""Logins and token refresh: hrLogin, refreshSession. (wechatLogin lives with the WeChat code.)"""

from __future__ import annotations

import marshmallow as ma
from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from qianli.services.auth import end_hr_session, hr_login, refresh_employee_session

from api.auth import current_principal, hr_required
from api.context import db, runtime
from api.schemas import NonBlank, StrictSchema

__all__ = ["blp", "TokenSchema"]

blp = Blueprint("sessions", __name__, url_prefix="/api/v1", description="Sessions and tokens")


class TokenSchema(ma.Schema):
    access_token = ma.fields.String(required=True)
    token_type = ma.fields.String(required=True, metadata={"description": "Always 'Bearer'"})
    expires_in = ma.fields.Integer(required=True, metadata={"description": "Seconds"})
    refresh_token = ma.fields.String(metadata={"description": "Employee sessions only; single use, rotated"})
    refresh_expires_in = ma.fields.Integer()


class HrLoginSchema(StrictSchema):
    company_code = ma.fields.String(required=True, validate=NonBlank(64))
    username = ma.fields.String(required=True, validate=NonBlank(64))
    password = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=256))


class HrTokenSchema(TokenSchema):
    role = ma.fields.String(required=True)
    display_name = ma.fields.String(required=True)


class RefreshSchema(StrictSchema):
    refresh_token = ma.fields.String(required=True, validate=ma.validate.Length(min=10, max=200))


def token_body(pair) -> dict:
    body = {"access_token": pair.access_token, "token_type": "Bearer", "expires_in": pair.expires_in}
    if pair.refresh_token:
        body.update(refresh_token=pair.refresh_token, refresh_expires_in=pair.refresh_expires_in)
    return body


@blp.route("/hr/session")
class HrSession(MethodView):
    @blp.arguments(HrLoginSchema)
    @blp.response(200, HrTokenSchema)
    @blp.doc(operationId="hrLogin", description="Opens a server-side session. Failed logins are throttled per "
                                                "account and per address: 429 login_locked (the account, with an "
                                                "HR alert) or login_throttled (the address), with retry_after_s.")
    def post(self, args):
        rt = runtime()
        user, pair = hr_login(db(), rt.settings, **args, redis=rt.redis, ip=request.remote_addr or "",
                              user_agent=request.headers.get("User-Agent", ""))
        return {**token_body(pair), "role": user.role, "display_name": user.display_name}

    @hr_required()
    @blp.response(204)
    @blp.doc(operationId="hrLogout", summary="End this HR session (the token is refused from the next request on)")
    def delete(self):
        end_hr_session(db(), current_principal().session_id or "", "logout")


@blp.route("/auth/refresh")
class Refresh(MethodView):
    @blp.arguments(RefreshSchema)
    @blp.response(200, TokenSchema)
    @blp.doc(operationId="refreshSession")
    def post(self, args):
        return token_body(refresh_employee_session(db(), runtime().settings, args["refresh_token"]))

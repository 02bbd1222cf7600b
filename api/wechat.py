"""WeChat login and binding: wechatLogin, bindEmployee, and HR's unbindEmployee."""

from __future__ import annotations

import marshmallow as ma
from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from qianli.services import identity as svc
from qianli.services.identity import RequestMeta

from api.auth import current_principal, hr_required, wechat_user_required
from api.context import db, require_loopback_client, runtime
from api.schemas import NonBlank, StrictSchema
from api.sessions import TokenSchema, token_body

__all__ = ["blp", "request_meta"]

blp = Blueprint("wechat", __name__, url_prefix="/api/v1", description="WeChat login and roster binding")


def request_meta(openid: str | None = None) -> RequestMeta:
    """IP and user agent of this request (the IP as seen by the WSGI server, after any ProxyFix)."""
    return RequestMeta(ip=request.remote_addr or "", user_agent=request.headers.get("User-Agent", ""), openid=openid)


class WechatLoginSchema(StrictSchema):
    code = ma.fields.String(required=True, validate=NonBlank(128), metadata={"description": "Code from wx.login()"})
    company_code = ma.fields.String(validate=NonBlank(64),
                                    metadata={"description": "Only when one WeChat user is bound in several companies"})


class EmployeeBriefSchema(ma.Schema):
    id = ma.fields.String(required=True)
    employee_no = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    department = ma.fields.String(required=True)


class WechatLoginResultSchema(TokenSchema):
    bound = ma.fields.Boolean(required=True, metadata={
        "description": "False: the token only allows bindEmployee (and sendSmsCode for purpose 'bind')"})
    employee = ma.fields.Nested(EmployeeBriefSchema, allow_none=True)
    alumni_only = ma.fields.Boolean(metadata={
        "description": "True for a former employee (deactivated at close): the token allows only the alumni "
                       "operations (getAlumniConsent, giveAlumniConsent, withdrawAlumniConsent, "
                       "listMyJobOpenings, answerJobOpening); no refresh token"})


class BindSchema(StrictSchema):
    company_code = ma.fields.String(required=True, validate=NonBlank(64), metadata={"description": "企业代码"})
    employee_no = ma.fields.String(required=True, validate=NonBlank(64), metadata={"description": "工号"})
    phone = ma.fields.String(required=True, validate=NonBlank(32), metadata={"description": "花名册登记的手机号"})
    sms_code = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=16),
                                metadata={"description": "6-digit code from sendSmsCode (purpose 'bind')"})


class BindResultSchema(TokenSchema):
    employee = ma.fields.Nested(EmployeeBriefSchema, required=True)


class UnbindSchema(StrictSchema):
    reason = ma.fields.String(required=True, validate=NonBlank(500))


class BindingEventSchema(ma.Schema):
    employee_id = ma.fields.String(required=True)
    action = ma.fields.String(required=True)
    actor = ma.fields.String(required=True)
    reason = ma.fields.String(required=True)
    occurred_at = ma.fields.AwareDateTime(required=True)


@blp.route("/wechat/session")
class WechatSession(MethodView):
    @blp.arguments(WechatLoginSchema)
    @blp.response(200, WechatLoginResultSchema)
    @blp.doc(operationId="wechatLogin", summary="Log in with a wx.login code; an unbound user gets a bind-only token")
    def post(self, args):
        if runtime().settings.wechat_backend == "dev":  # 'dev-<openid>' logs in as anyone: this machine only
            require_loopback_client("wechat")
        out = svc.wechat_login(db(), runtime(), args["code"], company_code=args.get("company_code"))
        return {**token_body(out.tokens), "bound": out.employee is not None, "employee": out.employee,
                "alumni_only": out.alumnus}


@blp.route("/wechat/binding")
class Binding(MethodView):
    @wechat_user_required
    @blp.arguments(BindSchema)
    @blp.response(200, BindResultSchema)
    @blp.doc(operationId="bindEmployee",
             summary="Bind this WeChat user to a roster employee (employee number + roster phone + SMS code)",
             description="An unknown employee, a phone that is not the roster's and a wrong, expired, used or "
                         "missing code get one answer: 422 binding_failed (same body and timing), each counted "
                         "against the caller's failure budget (429 bind_attempts_exhausted).")
    def post(self, args):
        p = current_principal()
        emp, tokens = svc.bind_employee(db(), runtime(), openid=p.openid, meta=request_meta(p.openid), **args)
        return {**token_body(tokens), "employee": emp}


@blp.route("/hr/employees/<string:employee_id>/wechat-binding")
class HrBinding(MethodView):
    @hr_required("hr_specialist")
    @blp.arguments(UnbindSchema)
    @blp.response(200, BindingEventSchema)
    @blp.doc(operationId="unbindEmployee", summary="Remove an employee's WeChat binding (ends their sessions)")
    def delete(self, args, employee_id):
        p = current_principal()
        return svc.unbind_employee(db(), company_id=p.company_id, employee_id=employee_id, actor=p.actor,
                                   reason=args["reason"], meta=request_meta())

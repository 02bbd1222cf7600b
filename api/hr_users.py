"""HR accounts (HR managers): listHrUsers, updateHrUser, resetHrPassword; any HR user: changeHrPassword.

Deactivation and password changes end the account's sessions at once; role and department changes
apply to its next request (they are read from the database on every request). Every change is an
``hr_account_events`` row.
"""

from __future__ import annotations

import marshmallow as ma
from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from cases.offboarding import DUTY_ROLES
from qianli.models import HR_ROLES, HrUser
from qianli.services import hr_users as svc

from api.auth import current_principal, hr_required
from api.context import db, runtime
from api.schemas import StrictSchema

__all__ = ["blp"]

blp = Blueprint("hr_users", __name__, url_prefix="/api/v1/hr", description="HR accounts and sessions")


class HrUserSchema(ma.Schema):
    id = ma.fields.String(required=True)
    username = ma.fields.String(required=True)
    display_name = ma.fields.String(required=True)
    role = ma.fields.String(required=True, metadata={"enum": list(HR_ROLES)})
    department = ma.fields.String(allow_none=True)
    active = ma.fields.Boolean(required=True)
    created_at = ma.fields.AwareDateTime(required=True)
    live_sessions = ma.fields.Integer(required=True, metadata={"description": "Sessions open now"})
    task_roles = ma.fields.List(ma.fields.String(), required=True, metadata={
        "description": "Offboarding duties (it, admin, finance): tasks a template gives to that role are this user's"})
    wecom_userid = ma.fields.String(allow_none=True, required=True,
                                    metadata={"description": "WeCom (企业微信) member: task messages go there when WeCom "
                                                             "is connected"})


class HrUserListSchema(ma.Schema):
    users = ma.fields.List(ma.fields.Nested(HrUserSchema), required=True)


class HrUserUpdateSchema(StrictSchema):
    active = ma.fields.Boolean(metadata={"description": "false: offboard (every session ends at once)"})
    role = ma.fields.String(validate=ma.validate.OneOf(HR_ROLES))
    department = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=100),
                                  metadata={"description": "Required for dept_head; null or '' clears it"})
    task_roles = ma.fields.List(ma.fields.String(validate=ma.validate.OneOf([r.value for r in DUTY_ROLES])),
                                validate=ma.validate.Length(max=len(DUTY_ROLES)),
                                metadata={"description": "Offboarding duties: it, admin, finance ([] clears them)"})
    wecom_userid = ma.fields.String(allow_none=True, validate=ma.validate.Regexp(r"^[A-Za-z0-9_@.-]{0,64}$"),
                                    metadata={"description": "WeCom userid (letters, digits, _-@.); null or '' clears it"})

    @ma.validates_schema
    def _not_empty(self, data, **_kw):
        if not data:
            raise ma.ValidationError("give at least one of active, role, department, task_roles, wecom_userid")


class PasswordResetSchema(StrictSchema):
    new_password = ma.fields.String(required=True, validate=ma.validate.Length(min=10, max=256))


class PasswordChangeSchema(StrictSchema):
    current_password = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=256))
    new_password = ma.fields.String(required=True, validate=ma.validate.Length(min=10, max=256))


class SessionsEndedSchema(ma.Schema):
    sessions_ended = ma.fields.Integer(required=True)


def _actor() -> tuple[str, str | None]:
    p = current_principal()
    return p.actor, p.subject_id


@blp.route("/users")
class HrUsers(MethodView):
    @hr_required("hr_manager")
    @blp.response(200, HrUserListSchema)
    @blp.doc(operationId="listHrUsers", summary="HR accounts of the company, with their open sessions")
    def get(self):
        return {"users": svc.list_hr_users(db(), current_principal().company_id)}


@blp.route("/users/<string:user_id>")
class HrUserItem(MethodView):
    @hr_required("hr_manager")
    @blp.arguments(HrUserUpdateSchema)
    @blp.response(200, HrUserSchema)
    @blp.doc(operationId="updateHrUser",
             summary="Deactivate / reactivate an HR account or change its role, department or offboarding duties",
             description="Deactivation ends every session of the account at once; a role or department change "
                         "applies to its next request. A manager cannot deactivate or demote themself "
                         "(409 hr_self_change).")
    def patch(self, args, user_id):
        actor, actor_id = _actor()
        user: HrUser = svc.get_hr_user(db(), current_principal().company_id, user_id)
        kwargs = {k: args[k] for k in ("active", "role", "task_roles", "wecom_userid") if k in args}
        if "department" in args:
            kwargs["department"] = args["department"] or None
        svc.update_hr_user(db(), user, actor=actor, actor_user_id=actor_id, ip=request.remote_addr or "", **kwargs)
        return svc.view(db(), user)


@blp.route("/users/<string:user_id>/password")
class HrUserPassword(MethodView):
    @hr_required("hr_manager")
    @blp.arguments(PasswordResetSchema)
    @blp.response(200, SessionsEndedSchema)
    @blp.doc(operationId="resetHrPassword",
             summary="Set a new password for an HR account: its sessions end at once, a login lockout is lifted")
    def post(self, args, user_id):
        actor, _ = _actor()
        rt = runtime()
        user = svc.get_hr_user(db(), current_principal().company_id, user_id)
        return {"sessions_ended": svc.reset_hr_password(db(), rt.settings, rt.redis, user, args["new_password"],
                                                        actor=actor, ip=request.remote_addr or "")}


@blp.route("/session/password")
class OwnPassword(MethodView):
    @hr_required()
    @blp.arguments(PasswordChangeSchema)
    @blp.response(200, SessionsEndedSchema)
    @blp.doc(operationId="changeHrPassword",
             summary="Change one's own password: every other session of the account ends")
    def put(self, args):
        p = current_principal()
        user = svc.get_hr_user(db(), p.company_id, p.subject_id or "")
        return {"sessions_ended": svc.change_own_password(db(), user, current_password=args["current_password"],
                                                          new_password=args["new_password"],
                                                          current_session_id=p.session_id,
                                                          ip=request.remote_addr or "")}

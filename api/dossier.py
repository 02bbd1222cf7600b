"""HR: export a case's evidence dossier as a zip - ``exportDossier``."""

from __future__ import annotations

import io

from flask import send_file
from flask.views import MethodView
from flask_smorest import Blueprint

from qianli.services.dossier import build_dossier
from qianli.services.review import get_hr_case, get_reviewer

from api.auth import current_principal, hr_required
from api.context import db, runtime

__all__ = ["blp"]

blp = Blueprint("dossier", __name__, url_prefix="/api/v1/hr/cases", description="Evidence dossier (HR)")


@blp.route("/<string:case_id>/dossier")
class Dossier(MethodView):
    @hr_required()
    @blp.response(200, {"type": "string", "format": "binary"}, content_type="application/zip",
                  description="The dossier zip (manifest, RFC 3161 timestamp, evidence, documents, report)")
    @blp.doc(operationId="exportDossier", summary="Export the case's evidence dossier (离职档案) as a zip",
             description="Any HR role, own company only; a department head, their department's cases only "
                         "(others: 404 like getCase). The export is recorded in the case's evidence chain. "
                         "Check it offline with `qianli dossier verify FILE.zip`.")
    def get(self, case_id):
        p = current_principal()
        case = get_hr_case(db(), get_reviewer(db(), p.subject_id, p.company_id), case_id)
        data = build_dossier(db(), runtime(), case, actor=p.actor)
        return send_file(io.BytesIO(data), mimetype="application/zip", as_attachment=True,
                         download_name=f"dossier-{case.id}.zip", max_age=0)

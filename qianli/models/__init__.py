"""All ORM models. Each area keeps its tables in its own module, imported here so that
``Base.metadata`` (and so Alembic) sees every table.

Layer: models. May import core (``qianli.db``, ``qianli.settings``) and the domain; nothing above."""

from qianli.db import Base
from qianli.models.absconding import *  # noqa: F401,F403
from qianli.models.absconding import __all__ as _absconding_all
from qianli.models.alumni import *  # noqa: F401,F403
from qianli.models.alumni import __all__ as _alumni_all
from qianli.models.anchors import *  # noqa: F401,F403
from qianli.models.anchors import __all__ as _anchors_all
from qianli.models.attendance import *  # noqa: F401,F403
from qianli.models.attendance import __all__ as _attendance_all
from qianli.models.calendar import *  # noqa: F401,F403
from qianli.models.calendar import __all__ as _calendar_all
from qianli.models.core import *  # noqa: F401,F403
from qianli.models.core import __all__ as _core_all
from qianli.models.events import *  # noqa: F401,F403
from qianli.models.events import __all__ as _events_all
from qianli.models.faces import *  # noqa: F401,F403
from qianli.models.faces import __all__ as _faces_all
from qianli.models.identity import *  # noqa: F401,F403
from qianli.models.identity import __all__ as _identity_all
from qianli.models.offboarding import *  # noqa: F401,F403
from qianli.models.offboarding import __all__ as _offboarding_all
from qianli.models.reminders import *  # noqa: F401,F403
from qianli.models.reminders import __all__ as _reminders_all
from qianli.models.sessions import *  # noqa: F401,F403
from qianli.models.sessions import __all__ as _sessions_all
from qianli.models.shared import *  # noqa: F401,F403
from qianli.models.signing import *  # noqa: F401,F403
from qianli.models.signing import __all__ as _signing_all
from qianli.models.tallies import *  # noqa: F401,F403
from qianli.models.tallies import __all__ as _tallies_all
from qianli.models.webhooks import *  # noqa: F401,F403
from qianli.models.webhooks import __all__ as _webhooks_all
from qianli.models.shared import __all__ as _shared_all

__all__ = ["Base", *_absconding_all, *_alumni_all, *_anchors_all, *_attendance_all, *_calendar_all, *_core_all,
           *_events_all, *_faces_all, *_identity_all, *_offboarding_all, *_reminders_all,
           *_sessions_all, *_shared_all,
           *_signing_all, *_tallies_all, *_webhooks_all]

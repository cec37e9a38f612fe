"""Users, API tokens and roles: who may call a shared server, and what each may do.

Off for a local single user (no server, or a server without ``--auth``); the server consults
:class:`AccessService` on every request when auth is on.
"""

from loopline.access.entities import ApiToken, Principal, Role, User
from loopline.access.service import AccessService

__all__ = ["AccessService", "ApiToken", "Principal", "Role", "User"]

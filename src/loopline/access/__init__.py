"""Users, API tokens and roles: who may call a shared server, and what each may do.

Off for a local single user (no server, or a server without ``--auth``); the server consults
:class:`AccessService` on every request when auth is on.
"""

from typing import TYPE_CHECKING

from loopline._lazy import lazy_names

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time names load on first use
    from loopline.access.entities import ApiToken, Principal, Role, User
    from loopline.access.service import AccessService

# Each public name and the module that defines it. The service pulls in the store and the event
# log; code that needs only the entities (the CLI's start-up, say) should not pay for them.
_LAZY = {
    "AccessService": "loopline.access.service",
    "ApiToken": "loopline.access.entities",
    "Principal": "loopline.access.entities",
    "Role": "loopline.access.entities",
    "User": "loopline.access.entities",
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())


__all__ = ["AccessService", "ApiToken", "Principal", "Role", "User"]

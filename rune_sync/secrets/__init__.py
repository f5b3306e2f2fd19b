"""Secret resolution: references in parameters → values, in memory, just before a call.

DESIGN §9. References (``secret:<name>/<key>``, ``secret:<name>.<namespace>.rune/<key>``,
legacy ``apiTokenSecretRef: <namespace>/<name>``) stay references through expand, plan,
plan files and state; they are resolved here, from — in this order — a secrets
directory (:mod:`.directory`), environment variables (:mod:`.environment`, naming in
:mod:`.naming`) and ``secret`` resources of the source (:mod:`.resources`).

- :class:`Resolver` — the apply engine's parameter resolver, ``(namespace, params) →
  params``; raises ``DriverConfigError`` naming the reference when one does not resolve;
- :func:`check` — the plan-time check: diagnostics for every reference of the desired
  state that does not resolve (RS401/RS402), plus warnings (RS403/RS404);
- :class:`GuardedDrivers` — drivers whose errors are cleaned of resolved values
  (:class:`Redactor`).

Layer: above ``spec`` and ``drivers``, below ``cli`` (which wires it into plan and
apply). Nothing here prints, logs or stores a value.
"""

from rune_sync.secrets.check import check
from rune_sync.secrets.guard import GuardedDrivers
from rune_sync.secrets.redact import Redactor
from rune_sync.secrets.reference import Reference
from rune_sync.secrets.resolver import Resolver, Unresolved

__all__ = ["GuardedDrivers", "Redactor", "Reference", "Resolver", "Unresolved", "check"]

"""The environment variable that holds a secret: ``RUNE_SECRET_<NAMESPACE>_<NAME>_<KEY>``.

DESIGN §9: the three parts are joined with ``_``, upper-cased, and every character that
is not an ASCII letter or digit becomes ``_``. The mapping is not one-to-one, so one
variable can answer for several secrets:

- the ``-`` of a namespace or name reads like the separator: namespace ``a-b``, name
  ``c`` and namespace ``a``, name ``b-c`` both give ``RUNE_SECRET_A_B_C_<KEY>``;
- keys lose their case and punctuation: ``token``, ``Token``, ``to.ken`` and ``to-ken``
  give ``TOKEN`` or ``TO_KEN``.

Resolution is defined anyway: sources are asked in a fixed order (secrets directory,
then environment, then secret resources), a variable answers every secret whose name
maps to it, and the directory — whose ``<namespace>/<name>/<key>`` paths keep every
character — comes first, so an operator who meets a collision puts the secrets
concerned there. When one run takes two different secrets from the same variable,
:mod:`rune_sync.secrets.environment` warns (RS404) naming both.
"""

from __future__ import annotations

import re

PREFIX = "RUNE_SECRET_"
_NOT_ALNUM = re.compile(r"[^A-Z0-9]")


def env_name(namespace: str, name: str, key: str) -> str:
    """``RUNE_SECRET_<NAMESPACE>_<NAME>_<KEY>`` for one key of one secret."""
    return PREFIX + _NOT_ALNUM.sub("_", f"{namespace}_{name}_{key}".upper())

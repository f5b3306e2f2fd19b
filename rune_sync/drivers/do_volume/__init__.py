"""DigitalOcean block volumes (``do-volume``).

Only the capability declaration lives here for now, so validation can check classes
that name this driver; the HTTP driver itself arrives with its own modules.
"""

from __future__ import annotations

from rune_sync.spec.model import AccessMode, Capabilities, ParameterRules

NAME = "do-volume"

CAPABILITIES = Capabilities(
    access_modes=frozenset({AccessMode.READ_WRITE_ONCE}),
    snapshots=True,
    expand=True,
    online_expand=False,
    block_device=True,
    topology_keys=frozenset({"rune.io/region"}),
)

PARAMETERS = ParameterRules(
    required=frozenset({"region"}),
    known=frozenset({"region", "fsType", "apiToken", "apiTokenSecretRef", "apiEndpoint"}),
    choices={"fsType": frozenset({"ext4", "xfs"})},
    secret=frozenset({"apiToken"}),
)

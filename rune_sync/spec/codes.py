"""The catalogue of diagnostic codes: a title and a paragraph for each.

``rune-sync explain CODE`` prints these; the loader, the schema pass and the rules use
the codes. A code, once published, keeps its meaning. RS0xx: reading files; RS1xx:
schema; RS2xx: rules across resources; RS3xx: the runefile; RS4xx: secrets, looked up by
plan and apply (validate checks references for form only).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    title: str
    explanation: str


_CODES = (
    Code(
        "RS001",
        "YAML syntax error",
        "The file is not valid YAML. The position points at the first character the parser "
        "could not accept. Common causes are tabs used for indentation (YAML allows only "
        "spaces), an unclosed bracket or quote, and a list item at the wrong indentation.",
    ),
    Code(
        "RS002",
        "duplicate key",
        "A mapping names the same key twice. YAML parsers disagree on which value wins, so "
        "rune-sync refuses the file; delete or rename one of the two keys.",
    ),
    Code(
        "RS003",
        "alias expansion too large",
        "Anchors and aliases (&name / *name) expand to more nodes than rune-sync accepts in "
        "one file. This protects against 'billion laughs' files; write the values out or use "
        "fewer nested aliases.",
    ),
    Code(
        "RS004",
        "not a UTF-8 text file",
        "The file contains NUL bytes or bytes that are not UTF-8. Resource files must be UTF-8 "
        "YAML; re-save the file as UTF-8, or move binary files out of the source tree (or "
        "give them a name that does not end in .yaml/.yml).",
    ),
    Code(
        "RS005",
        "unreadable file or folder",
        "A file or folder below the source root cannot be read (permission denied, or it "
        "disappeared while being read). Fix its permissions, or move it out of the source.",
    ),
    Code(
        "RS006",
        "document is not a mapping",
        "Each YAML document must be a mapping whose keys are kinds (storageClass, volume, "
        "snapshot, service, secret, or their plurals). A document that is a list or a single "
        "value declares nothing rune-sync understands.",
    ),
    Code(
        "RS007",
        "unknown kind",
        "A document's top-level key is not one of storageClass, volume, snapshot, service, "
        "secret, or the plurals storageClasses, volumes, snapshots, services, secrets. Kind "
        "keys are case-sensitive.",
    ),
    Code(
        "RS008",
        "resource has the wrong shape",
        "A singular kind key (volume:) must hold one mapping of fields and a plural key "
        "(volumes:) a list of such mappings. An empty value (volume: with nothing after it) "
        "or a scalar is refused.",
    ),
    Code(
        "RS009",
        "file too large",
        "Resource files are read up to 16 MiB each. Split large files; rune-sync reads every "
        "*.yaml and *.yml file below the root, so several smaller files work the same.",
    ),
    Code(
        "RS010",
        "symlink problem in the source tree",
        "A symlink below the source root loops, is broken, or points outside the source. "
        "rune-sync follows symlinks only while they stay inside the source root, so a "
        "repository cannot make it read files elsewhere on the host.",
    ),
    Code(
        "RS011",
        "unsupported YAML tag",
        "Only the standard tags (!!str, !!int, !!float, !!bool, !!null, !!map, !!seq) are "
        "accepted, and the value must match its tag. Remove custom tags such as !Ref.",
    ),
    Code(
        "RS101",
        "unknown field",
        "The field is not part of the kind's schema. Storage kinds reject unknown fields "
        "because a typo (sise: instead of size:) would otherwise be silently ignored. "
        "`rune-sync schema KIND` prints the accepted fields.",
    ),
    Code(
        "RS102",
        "missing required field",
        "A required field is absent. Volumes need name, size and accessMode; classes need name "
        "and driver; snapshots need name and source.volume; service mounts need name and "
        "mountPath.",
    ),
    Code(
        "RS103",
        "wrong type",
        "A field has the wrong type, for example a number where a string is expected. "
        "Parameter and label values are strings: quote numbers and booleans "
        '(iops: "3000").',
    ),
    Code(
        "RS104",
        "value not allowed",
        "The value is not one of the allowed choices. Enumerations are case-sensitive: "
        "accessMode is ReadWriteOnce, ReadOnlyMany or ReadWriteMany; reclaimPolicy is retain "
        "or delete (lowercase).",
    ),
    Code(
        "RS105",
        "invalid name",
        "Names and namespaces are DNS-1123 labels: at most 63 lowercase letters, digits and "
        "'-', starting and ending with a letter or digit. A cross-namespace claim is written "
        "name.namespace.rune.",
    ),
    Code(
        "RS106",
        "invalid size",
        "Sizes are Kubernetes quantities: Ki Mi Gi Ti Pi Ei are powers of two, k/K M G T P E "
        "powers of ten, and a bare integer is bytes (write 10Gi, not 10). Suffixes are "
        "case-sensitive (10gi is refused) and sizes cannot be negative.",
    ),
    Code(
        "RS107",
        "malformed secret reference",
        "A value that starts with 'secret:' must be secret:<name>/<key> (resolved in the "
        "consuming volume's namespace) or secret:<name>.<namespace>.rune/<key> (pinned). "
        "Values without the prefix are passed to the driver verbatim.",
    ),
    Code(
        "RS108",
        "invalid value",
        "The value breaks a constraint of the kind's schema (a minimum, a length, a shape). "
        "The message names the constraint.",
    ),
    Code(
        "RS201",
        "claim and claimTemplate",
        "Each entry of a service's volumes must have exactly one of claim (an existing volume) "
        "or claimTemplate (one volume per replica). Neither or both is refused.",
    ),
    Code(
        "RS202",
        "path not absolute or not clean",
        "mountPath must be an absolute path; subPath must be relative and must not contain "
        "'..'. (A malformed local-host hostPath is RS209.)",
    ),
    Code(
        "RS203",
        "mount path blocked",
        "Mounting over / or /etc, or at or below /proc, /sys or /var/run/docker.sock is refused "
        "(seed security defaults: the bind-mount blocklist). A mount below /etc, such as "
        "/etc/app, is allowed.",
    ),
    Code(
        "RS204",
        "access mode not supported by the driver",
        "The volume's accessMode is not one the class's driver advertises. local supports "
        "ReadWriteOnce; local-host ReadWriteOnce and ReadOnlyMany; do-volume ReadWriteOnce. "
        "There is no 'try anyway' path: pick a supported mode or another class.",
    ),
    Code(
        "RS205",
        "duplicate mount path",
        "Two mounts of one service use the same mountPath. Each mountPath must be unique "
        "within the service.",
    ),
    Code(
        "RS206",
        "mount path overlaps a secret or config mount",
        "A volume mountPath equals, contains or sits inside a secretMounts or configMounts "
        "path of the same service (or two of those overlap). Mounts must not shadow each "
        "other.",
    ),
    Code(
        "RS207",
        "ReadWriteOnce claim on a scaled service",
        "A claim mount of a ReadWriteOnce volume needs scale: 1, because one volume cannot be "
        "written by several replicas. Use claimTemplate for per-replica volumes, or a "
        "ReadOnlyMany volume for shared read-only data.",
    ),
    Code(
        "RS208",
        "snapshots not supported by the driver",
        "A Snapshot (or a restore from one) names a volume whose driver does not advertise "
        "snapshot support, such as local-host.",
    ),
    Code(
        "RS209",
        "hostPath missing or malformed",
        "A local-host volume needs parameters.hostPath (from the class or the volume): an "
        "absolute path without '..' components.",
    ),
    Code(
        "RS210",
        "hostPath not allowed",
        "A local-host hostPath must equal or sit below an entry of the runefile's "
        "storage.hostPathAllowlist, compared by whole path components (/srv/rune covers "
        "/srv/rune/a, not /srv/rune2). An empty allowlist denies every host path. Symlinks are "
        "resolved by the driver when it provisions.",
    ),
    Code(
        "RS211",
        "process runtime needs local-host volumes",
        "A service that runs as a process (it has a process: block) may mount only local-host "
        "volumes; block-device drivers such as do-volume and managed local directories are "
        "rejected.",
    ),
    Code(
        "RS212",
        "reclaimPolicy delete on local-host",
        "local-host volumes belong to the operator; a reclaimPolicy of delete is refused "
        "outright. Use retain.",
    ),
    Code(
        "RS213", "more than one default class", "At most one StorageClass may carry default: true."
    ),
    Code(
        "RS214",
        "unknown storage class",
        "storageClassName names a class that is neither defined in the source nor built in "
        "(local, local-host).",
    ),
    Code(
        "RS215",
        "unknown driver",
        "The StorageClass names a driver that is not installed. `rune-sync drivers` lists "
        "the installed drivers.",
    ),
    Code(
        "RS216",
        "unknown claimed volume",
        "A service's claim names a volume that the source does not define, neither directly "
        "nor through a claimTemplate.",
    ),
    Code(
        "RS217",
        "unknown snapshot source",
        "A Snapshot's source.volume names a volume that does not exist in the snapshot's "
        "namespace.",
    ),
    Code(
        "RS218",
        "unknown restore source",
        "A Volume's restoreFrom.snapshot names a Snapshot that does not exist in the volume's "
        "namespace.",
    ),
    Code(
        "RS219",
        "duplicate resource",
        "Two resources share one address (kind, namespace and name). Names are unique per "
        "namespace; StorageClass names are cluster-unique.",
    ),
    Code(
        "RS220",
        "claim template collides with a volume",
        "A claimTemplate generates volumes named <mount>-<service>-<ordinal>; one of those "
        "names is already used by an explicit Volume in the same namespace.",
    ),
    Code(
        "RS221",
        "no storage class",
        "The volume names no storageClassName and there is no default: no class carries "
        "default: true and the runefile's defaultStorageClass is empty or names no class.",
    ),
    Code(
        "RS222",
        "shorthand secret reference on a StorageClass",
        "A StorageClass is cluster-scoped, so a shorthand secret:<name>/<key> in its "
        "parameters resolves in the namespace of whichever volume uses the class: every "
        "namespace needs its own copy. Pin it with secret:<name>.<namespace>.rune/<key>. "
        "This is a warning.",
    ),
    Code(
        "RS223",
        "topology expression values",
        "In allowedTopologies.matchExpressions, the operators In and NotIn need a non-empty "
        "values list; Exists and DoesNotExist take no values.",
    ),
    Code(
        "RS224",
        "createIfMissing not honoured",
        'A local-host parameter createIfMissing: "true" is honoured only when the runefile '
        "sets storage.allowCreateMissing: true. Without it the directory must already exist "
        "when the volume is provisioned. This is a warning.",
    ),
    Code(
        "RS225",
        "generated name too long",
        "A claimTemplate volume name <mount>-<service>-<ordinal> must itself be a DNS-1123 "
        "label of at most 63 characters; shorten the mount or service name.",
    ),
    Code(
        "RS226",
        "driver parameter problem",
        "A driver parameter is missing or has a value the driver does not accept, for "
        "example do-volume without region, or an fsType other than ext4 or xfs.",
    ),
    Code(
        "RS227",
        "restore across drivers",
        "A volume restored from a snapshot must use the same driver as the snapshot's source "
        "volume, and that driver must support snapshots.",
    ),
    Code(
        "RS228",
        "size is a bare number",
        "A size written as a bare integer is bytes, not gigabytes: size: 10 is ten bytes. "
        "Write 10Gi. This is a warning.",
    ),
    Code(
        "RS229",
        "size must be positive",
        "A volume or claimTemplate size must be greater than zero.",
    ),
    Code(
        "RS230",
        "secret data written in the source",
        "A secret resource in the source holds its values in the repository. rune-sync "
        "accepts it, but prefer a secrets directory or environment variables. This is a "
        "warning.",
    ),
    Code(
        "RS232",
        "DigitalOcean volume name too long or shared",
        "The do-volume driver names each volume rune-<namespace>-<name> in the class's "
        "region. DigitalOcean allows at most 64 characters, and two volumes whose names map "
        "to the same name in one region (team-a/web and team/a-web are both "
        "rune-team-a-web) would share one DigitalOcean volume. Shorten or rename.",
    ),
    Code(
        "RS231",
        "duplicate mount name",
        "Each entry of a service's volumes needs its own name: names are unique within a "
        "service, and a claimTemplate's generated volumes are named after it.",
    ),
    Code(
        "RS233",
        "credential written out in a driver parameter",
        "A parameter the driver declares as a credential (do-volume's apiToken) holds a "
        "plain value instead of a secret: reference. Parameters are recorded as written in "
        "the state and in saved plans, so the value would end up there. Put it in a "
        "secret (a secrets directory, a RUNE_SECRET_* variable or a secret resource) and "
        "write its reference, pinned on a StorageClass: "
        "secret:<name>.<namespace>.rune/token. The message points at the parameter and never "
        "shows it. This is a warning.",
    ),
    Code(
        "RS301",
        "default class unknown",
        "The runefile's storage.defaultStorageClass names a class that is neither defined in "
        'the source nor built in. Use "" to disable the default.',
    ),
    Code(
        "RS302",
        "runefile cannot be read",
        "The runefile is not valid YAML or TOML, or its storage section has the wrong shape.",
    ),
    Code(
        "RS303",
        "several runefiles",
        "More than one of runefile.yaml, runefile.yml and runefile.toml sits at the source "
        "root; the first in that order is used. This is a warning.",
    ),
    Code(
        "RS401",
        "secret reference does not resolve",
        "A secret: reference (or a legacy apiTokenSecretRef) in the parameters of a volume "
        "or class names a secret or key that none of the sources has. plan and apply look "
        "in this order: the secrets directory (--secrets-dir or RUNE_SYNC_SECRETS_DIR, file "
        "DIR/<namespace>/<name>/<key>), the environment variable "
        "RUNE_SECRET_<NAMESPACE>_<NAME>_<KEY> (upper-cased, every character that is not a "
        "letter or digit replaced by _), then secret resources in the source. A shorthand "
        "secret:<name>/<key> is looked up in the namespace of the volume that uses it. The "
        "message lists every place looked in. Nothing is planned or applied.",
    ),
    Code(
        "RS402",
        "secret found but refused",
        "A source has the secret but rune-sync must not use it: a file of the secrets "
        "directory that leads outside it through a symlink, that cannot be read, is not a "
        "regular file, is larger than 1 MiB or is not UTF-8 text; or a secret resource "
        "whose valueBase64 is binary data (a driver parameter must be text). Fix the file "
        "or the secret; rune-sync does not fall back to a later source.",
    ),
    Code(
        "RS403",
        "secrets readable by others",
        "The secrets directory, or a file of it that served a reference, grants group or "
        "others access. Keep secrets readable by their owner only: chmod -R go-rwx DIR. "
        "Given once per run. This is a warning.",
    ),
    Code(
        "RS404",
        "one environment variable serves two secrets",
        "Environment variable names lose case and punctuation: namespace a-b with secret c "
        "and namespace a with secret b-c both read RUNE_SECRET_A_B_C_<KEY>. The run took "
        "two different secrets from one variable, so both got the same value. Put them in "
        "the secrets directory (DIR/<namespace>/<name>/<key>), which is read before the "
        "environment. This is a warning.",
    ),
)

CODES: dict[str, Code] = {c.code: c for c in _CODES}


def lookup(code: str) -> Code | None:
    """The entry for ``code`` (case-insensitive), or None."""
    return CODES.get(code.strip().upper())

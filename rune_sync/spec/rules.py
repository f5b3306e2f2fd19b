"""Cross-resource rules (DESIGN §3; seed 000 *Validation*, seed 001 *Security defaults*).

Each rule is a function named after its codes that yields diagnostics; :func:`check`
runs them all over every resource that passed its schema. Rules about parameters
(host paths, secret references, driver parameters) live in :mod:`rune_sync.spec.params`
and mount-path rules in :mod:`rune_sync.spec.mounts`. Driver knowledge comes in
through :class:`~rune_sync.spec.ruleinput.RuleInput`, built by whoever wires the
pipeline (drivers sit above this layer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from rune_sync.diagnostics import Diagnostic, Severity
from rune_sync.spec import mounts, names, params
from rune_sync.spec.load import Origin
from rune_sync.spec.model import (
    AccessMode,
    ReclaimPolicy,
    Runtime,
    Secret,
    Service,
    Snapshot,
    StorageClass,
    Volume,
)
from rune_sync.spec.ruleinput import LOCAL_HOST, RuleInput, diag, loc, suggest


def rs213_one_default_class(rin: RuleInput) -> Iterator[Diagnostic]:
    defaults = [c for c in rin.classes if c.default]
    for extra in defaults[1:]:
        first = defaults[0]
        yield diag(
            "RS213",
            f"more than one default class: {first.name!r} is already default: true "
            f"({loc(first.origin) or 'source'})",
            loc(extra.origin, "default"),
            extra.address,
        )


def rs215_known_driver(rin: RuleInput) -> Iterator[Diagnostic]:
    known = sorted(rin.drivers)
    for cls in rin.classes:
        if cls.driver not in rin.drivers:
            yield diag(
                "RS215",
                f"driver {cls.driver!r} is not installed{suggest(cls.driver, known)}"
                f"; installed: {', '.join(known)}",
                loc(cls.origin, "driver"),
                cls.address,
            )


def rs214_rs221_class_resolves(rin: RuleInput) -> Iterator[Diagnostic]:
    known = sorted(rin.class_index)
    for site in rin.sites:
        name = site.volume.storage_class_name
        if name is None:
            if rin.default_class is None:
                yield diag(
                    "RS221",
                    "no storageClassName and no default class: set storageClassName, "
                    "mark a class default: true, or set the runefile's defaultStorageClass",
                    site.locate(),
                    site.label,
                )
        elif name not in rin.class_index:
            yield diag(
                "RS214",
                f"storage class {name!r} is not defined{suggest(name, known)}",
                site.locate("storageClassName"),
                site.label,
            )


def rs204_access_mode_supported(rin: RuleInput) -> Iterator[Diagnostic]:
    for site in rin.sites:
        found = rin.driver_of(site.volume)
        if found is None:
            continue
        driver, caps = found
        mode = site.volume.access_mode
        if mode not in caps.access_modes:
            supported = ", ".join(sorted(m.value for m in caps.access_modes))
            yield diag(
                "RS204",
                f"accessMode {mode.value} is not supported by driver {driver!r} "
                f"(supports {supported})",
                site.locate("accessMode"),
                site.label,
            )


def rs212_no_delete_on_local_host(rin: RuleInput) -> Iterator[Diagnostic]:
    for site in rin.sites:
        cls = rin.class_of(site.volume)
        if cls is None or cls.driver != LOCAL_HOST:
            continue
        policy = site.volume.reclaim_policy or cls.reclaim_policy
        if policy is ReclaimPolicy.DELETE:
            where = "reclaimPolicy" if site.volume.reclaim_policy else "storageClassName"
            via = "" if site.volume.reclaim_policy else f" (inherited from class {cls.name!r})"
            yield diag(
                "RS212",
                f"reclaimPolicy delete is refused on local-host volumes{via}; "
                "the operator owns the path — use retain",
                site.locate(where),
                site.label,
            )


def rs211_process_runtime_local_host(rin: RuleInput) -> Iterator[Diagnostic]:
    for svc in rin.services:
        if svc.runtime is not Runtime.PROCESS:
            continue
        for i, mount in enumerate(svc.volumes):
            vol = _mount_volume(rin, svc, i)
            cls = rin.class_of(vol) if vol is not None else None
            if cls is not None and cls.driver != LOCAL_HOST:
                yield diag(
                    "RS211",
                    f"mount {mount.name!r} uses driver {cls.driver!r}; a service "
                    "with a process runtime may mount only local-host volumes",
                    loc(svc.origin, "volumes", i),
                    svc.address,
                )


def _mount_volume(rin: RuleInput, svc: Service, index: int) -> Volume | None:
    mount = svc.volumes[index]
    if mount.claim is not None:
        return rin.volume_index.get((mount.claim.namespace, mount.claim.name))
    for site in rin.sites:
        if site.origin is svc.origin and site.prefix[:2] == ("volumes", index):
            return site.volume
    return None


def rs216_rs207_claims(rin: RuleInput) -> Iterator[Diagnostic]:
    for svc in rin.services:
        for i, mount in enumerate(svc.volumes):
            claim = mount.claim
            if claim is None:
                continue
            vol = rin.volume_index.get((claim.namespace, claim.name))
            if vol is None:
                known = [n for (ns, n) in rin.volume_index if ns == claim.namespace]
                yield diag(
                    "RS216",
                    f"claim names volume {claim.namespace}/{claim.name}, which is not "
                    f"defined{suggest(claim.name, known)}",
                    loc(svc.origin, "volumes", i, "claim", "name"),
                    svc.address,
                )
            elif vol.access_mode is AccessMode.READ_WRITE_ONCE and svc.scale > 1:
                yield diag(
                    "RS207",
                    f"mount {mount.name!r} claims ReadWriteOnce volume {claim.name!r} "
                    f"but scale is {svc.scale}: use claimTemplate for per-replica volumes, or "
                    "scale: 1",
                    loc(svc.origin, "volumes", i, "claim"),
                    svc.address,
                )


def rs201_claim_or_template(rin: RuleInput) -> Iterator[Diagnostic]:
    for svc in rin.services:
        for i, mount in enumerate(svc.volumes):
            has_claim, has_template = mount.claim is not None, mount.claim_template is not None
            if has_claim == has_template:
                what = (
                    "both claim and claimTemplate"
                    if has_claim
                    else "neither claim nor claimTemplate"
                )
                yield diag(
                    "RS201",
                    f"mount {mount.name!r} has {what}; give exactly one",
                    loc(svc.origin, "volumes", i),
                    svc.address,
                )


def rs217_rs208_snapshot_sources(rin: RuleInput) -> Iterator[Diagnostic]:
    for snap in rin.snapshots:
        vol = rin.volume_index.get((snap.namespace, snap.source_volume))
        if vol is None:
            known = [n for (ns, n) in rin.volume_index if ns == snap.namespace]
            yield diag(
                "RS217",
                f"source volume {snap.namespace}/{snap.source_volume} is not defined"
                f"{suggest(snap.source_volume, known)}",
                loc(snap.origin, "source", "volume"),
                snap.address,
            )
            continue
        found = rin.driver_of(vol)
        if found is not None and not found[1].snapshots:
            yield diag(
                "RS208",
                f"volume {snap.source_volume!r} uses driver {found[0]!r}, which does "
                "not support snapshots",
                loc(snap.origin, "source", "volume"),
                snap.address,
            )


def rs218_rs227_restores(rin: RuleInput) -> Iterator[Diagnostic]:
    snaps = {(s.namespace, s.name): s for s in rin.snapshots}
    for vol in rin.volumes:
        if vol.restore_from is None:
            continue
        snap = snaps.get((vol.namespace, vol.restore_from))
        if snap is None:
            known = [n for (ns, n) in snaps if ns == vol.namespace]
            yield diag(
                "RS218",
                f"restoreFrom names snapshot {vol.namespace}/{vol.restore_from}, "
                f"which is not defined{suggest(vol.restore_from, known)}",
                loc(vol.origin, "restoreFrom", "snapshot"),
                vol.address,
            )
            continue
        target = rin.driver_of(vol)
        source_vol = rin.volume_index.get((snap.namespace, snap.source_volume))
        source = rin.driver_of(source_vol) if source_vol is not None else None
        if target is None or source is None:
            continue
        if not target[1].snapshots:
            yield diag(
                "RS208",
                f"driver {target[0]!r} cannot restore from snapshots",
                loc(vol.origin, "restoreFrom"),
                vol.address,
            )
        elif target[0] != source[0]:
            yield diag(
                "RS227",
                f"snapshot {snap.name!r} was taken on driver {source[0]!r}; it cannot "
                f"be restored into a {target[0]!r} volume",
                loc(vol.origin, "restoreFrom"),
                vol.address,
            )


def rs219_unique_addresses(rin: RuleInput) -> Iterator[Diagnostic]:
    seen: dict[str, Origin | None] = {}
    everything: list[StorageClass | Volume | Snapshot | Service | Secret] = [
        *rin.classes,
        *rin.volumes,
        *rin.snapshots,
        *rin.services,
        *rin.secrets,
    ]
    for spec in everything:
        key = str(spec.address)
        if key in seen:
            first = seen[key]
            at = f" (first at {first.location})" if first is not None else ""
            yield diag("RS219", f"{key} is defined twice{at}", loc(spec.origin, "name"), key)
        else:
            seen[key] = spec.origin
    explicit = {str(v.address) for v in rin.volumes}
    for site in rin.sites:
        for vol in site.generated:
            key = str(vol.address)
            if key in explicit:
                continue  # RS220 says it better
            if key in seen:
                first = seen[key]
                if first is site.origin:
                    continue  # one service's templates: RS231 names the duplicate mount
                at = f" (first at {first.location})" if first is not None else ""
                yield diag(
                    "RS219",
                    f"claimTemplate generates {key}, which another claimTemplate "
                    f"also generates{at}",
                    loc(site.origin, *site.prefix[:2], "name"),
                    site.label,
                )
            else:
                seen[key] = site.origin


def rs220_rs225_template_names(rin: RuleInput) -> Iterator[Diagnostic]:
    explicit = {(v.namespace, v.name) for v in rin.volumes}
    for site in rin.sites:
        if not site.prefix:
            continue
        mount_index = site.prefix[1]
        for vol in site.generated or (site.volume,):
            problem = names.label_problem(vol.name)
            if problem is not None:
                yield diag(
                    "RS225",
                    f"generated volume name {vol.name!r} {problem}",
                    loc(site.origin, "volumes", mount_index, "name"),
                    site.label,
                )
                break
        for vol in site.generated:
            if (vol.namespace, vol.name) in explicit:
                yield diag(
                    "RS220",
                    f"claimTemplate generates volume {vol.namespace}/{vol.name}, which "
                    "is also defined as a Volume",
                    loc(site.origin, "volumes", mount_index, "name"),
                    site.label,
                )


def rs223_topology_values(rin: RuleInput) -> Iterator[Diagnostic]:
    for cls in rin.classes:
        for i, sel in enumerate(cls.allowed_topologies):
            for j, expr in enumerate(sel.match_expressions):
                needs = expr.operator in ("In", "NotIn")
                if needs and not expr.values:
                    msg = f"operator {expr.operator} needs a non-empty values list"
                elif not needs and expr.values:
                    msg = f"operator {expr.operator} takes no values"
                else:
                    continue
                yield diag(
                    "RS223",
                    msg,
                    loc(cls.origin, "allowedTopologies", i, "matchExpressions", j),
                    cls.address,
                )


def rs228_rs229_sizes(rin: RuleInput) -> Iterator[Diagnostic]:
    for site in rin.sites:
        size = site.volume.size
        if size.bytes == 0:
            yield diag("RS229", "size must be greater than zero", site.locate("size"), site.label)
        elif size.text.isdigit() and size.bytes < 1024 * 1024:
            yield diag(
                "RS228",
                f"size {size.text} is {size.bytes} bytes; write e.g. {size.text}Gi for gibibytes",
                site.locate("size"),
                site.label,
                Severity.WARNING,
            )


def rs301_default_class_known(rin: RuleInput) -> Iterator[Diagnostic]:
    name = rin.settings.default_storage_class
    if name and name not in rin.class_index:
        yield diag(
            "RS301",
            f"defaultStorageClass {name!r} names no class{suggest(name, sorted(rin.class_index))}",
            rin.settings_location,
            "runefile",
        )


def rs231_unique_mount_names(rin: RuleInput) -> Iterator[Diagnostic]:
    for svc in rin.services:
        first: dict[str, int] = {}
        for i, mount in enumerate(svc.volumes):
            if mount.name in first:
                yield diag(
                    "RS231",
                    f"mount name {mount.name!r} is already used by volumes["
                    f"{first[mount.name]}]; mount names are unique within a service",
                    loc(svc.origin, "volumes", i, "name"),
                    svc.address,
                )
            else:
                first[mount.name] = i


def rs230_secrets_in_source(rin: RuleInput) -> Iterator[Diagnostic]:
    for sec in rin.secrets:
        if sec.keys:
            field = next(
                (
                    f
                    for f in ("data", "value", "valueBase64")
                    if sec.origin is not None
                    and sec.origin.node is not None
                    and f in sec.origin.node
                ),
                "",
            )
            yield diag(
                "RS230",
                "this secret's values are stored in the source repository; prefer a "
                "secrets directory or RUNE_SECRET_* environment variables",
                loc(sec.origin, field) if field else loc(sec.origin),
                sec.address,
                Severity.WARNING,
            )


DO_VOLUME = "do-volume"
DO_NAME_LIMIT = 64


def rs232_digitalocean_names(rin: RuleInput) -> Iterator[Diagnostic]:
    """do-volume names its volumes ``rune-<namespace>-<name>``: at most 64 characters, and
    unique in a region (``team-a/web`` and ``team/a-web`` would share one volume)."""
    first: dict[tuple[str, str], str] = {}
    for site in rin.sites:
        cls = rin.class_of(site.volume)
        if cls is None or cls.driver != DO_VOLUME:
            continue
        where = site.locate("name") or site.locate()
        for vol in site.generated or (site.volume,):
            name = f"rune-{vol.namespace}-{vol.name}"
            if len(name) > DO_NAME_LIMIT:
                yield diag(
                    "RS232",
                    f"the DigitalOcean volume name {name!r} is {len(name)} characters; "
                    f"DigitalOcean allows {DO_NAME_LIMIT}: shorten the namespace or name",
                    where,
                    site.label,
                )
            region = vol.parameters.get("region") or cls.parameters.get("region", "")
            other = first.setdefault((region, name), str(vol.address))
            if other != str(vol.address):
                yield diag(
                    "RS232",
                    f"{vol.address} and {other} would both be the DigitalOcean volume "
                    f"{name!r} in {region or 'the same region'}: rename one",
                    where,
                    site.label,
                )


Rule = Callable[[RuleInput], Iterator[Diagnostic]]


def rs203_rs205_rs206_mount_paths(rin: RuleInput) -> Iterator[Diagnostic]:
    return mounts.check(rin.services)


RULES: tuple[Rule, ...] = (
    rs203_rs205_rs206_mount_paths,
    rs201_claim_or_template,
    rs204_access_mode_supported,
    rs216_rs207_claims,
    rs217_rs208_snapshot_sources,
    params.rs209_rs210_rs224_host_paths,
    rs211_process_runtime_local_host,
    rs212_no_delete_on_local_host,
    rs213_one_default_class,
    rs214_rs221_class_resolves,
    rs215_known_driver,
    rs218_rs227_restores,
    rs219_unique_addresses,
    rs220_rs225_template_names,
    params.rs107_rs222_secret_references,
    params.rs226_driver_parameters,
    params.rs233_literal_secrets,
    rs223_topology_values,
    rs228_rs229_sizes,
    rs230_secrets_in_source,
    rs231_unique_mount_names,
    rs232_digitalocean_names,
    rs301_default_class_known,
)


def check(rin: RuleInput) -> list[Diagnostic]:
    """Every rule's diagnostics over ``rin``."""
    return [d for rule in RULES for d in rule(rin)]

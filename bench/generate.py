"""Generate a source repository of N volumes spread over F files (default 100).

Each file holds N/F volume documents in a few namespaces, with labels, like a real
repository that grew by copy and paste. Also writes a runefile whose
localVolumeRoot points at ``--volume-root``. Used by every benchmark in bench/.

    python -m bench.generate OUT_DIR --volumes 10000 [--files 100]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path


def generate(out: Path, *, volumes: int, files: int = 100, volume_root: Path | None = None) -> Path:
    """Write the repository to ``out`` (replacing it) and return ``out``."""
    if out.exists():
        shutil.rmtree(out)
    (out / "volumes").mkdir(parents=True)
    root = volume_root or out.parent / f"{out.name}-volumes"
    (out / "runefile.yaml").write_text(
        f"storage:\n  defaultStorageClass: local\n  localVolumeRoot: {root.absolute()}\n"
    )
    per_file, extra = divmod(volumes, files)
    n = 0
    for f in range(files):
        count = per_file + (1 if f < extra else 0)
        chunks = []
        for _ in range(count):
            chunks.append(
                f"---\nvolume:\n  name: vol-{n:06d}\n  namespace: team-{n % 10}\n"
                f"  storageClassName: local\n  size: {1 + n % 50}Gi\n"
                f"  accessMode: ReadWriteOnce\n  reclaimPolicy: retain\n"
                f"  labels:\n    app: app-{n % 7}\n    tier: data\n"
            )
            n += 1
        (out / "volumes" / f"volumes-{f:03d}.yaml").write_text("".join(chunks))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--volumes", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=100)
    args = parser.parse_args()
    generate(args.out, volumes=args.volumes, files=args.files)
    print(f"wrote {args.volumes} volumes in {args.files} files to {args.out}")


if __name__ == "__main__":
    main()

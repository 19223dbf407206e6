"""The command scripts/example.sh ends with: run `java -version` in the example's
app-base image for a platform other than this engine's own, by the reference
javabase keeps for it in this engine (`<ref>-linux-arm64`).

    python examples/offline/hint.py REPORT [IMAGE]

Not `docker run --platform linux/arm64 <registry>/example/app-base:1`: that tag
is the engine's own platform's image, so the engine pulls the arm64 image from
the registry and re-points the tag to it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def hint(report: dict[str, Any], image: str = "app-base") -> str:
    """`docker run` of `image` for another platform than the engine's, by the
    reference this engine holds for it; for a single-platform image, its own tag."""
    rows = [row for row in report["images"] if row.get("image") == image]
    for row in rows:
        local = row.get("engine_references") or []
        if row.get("platform") and local and local[0] not in row["references"]:
            return f"docker run --rm --platform {row['platform']} {local[0]} java -version"
    if not rows:
        raise SystemExit(f"hint: the report has no image {image!r}")
    return f"docker run --rm {rows[0]['references'][0]} java -version"


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print(__doc__, file=sys.stderr)
        return 2
    print(hint(json.loads(Path(argv[0]).read_text()), *argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Generate the demo datasets: ``python -m echoes_lab.demo --out DIR [--size small|large]``.

Writes every generator's files into DIR and a ``catalog.yaml`` listing them with their
sha256. ``--write-catalog`` also updates the packaged ``echoes_lab/catalog.yaml`` (so the
catalogue in the repository always matches what the seeds produce).
"""

import argparse
import sys
from pathlib import Path

from echoes_lab.demo import PACKAGED, generate


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m echoes_lab.demo",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="folder to write into")
    parser.add_argument("--size", choices=["small", "large"], default="small")
    parser.add_argument("--write-catalog", action="store_true", help=f"also update {PACKAGED}")
    args = parser.parse_args()
    generate(args.out, args.size, packaged=args.write_catalog)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Check the built sdist and wheels in DIST (``.ci/install`` makes them):
the wheel holds every module and data file of ``src/quart_flet``, the wheel
built from the sdist holds the same files as the one built from the tree, and
the sdist carries what rebuilding and testing need."""

from __future__ import annotations

import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "quart_flet"


def wheel_files(path: Path) -> set[str]:
    with zipfile.ZipFile(path) as wheel:
        return {name for name in wheel.namelist() if ".dist-info/" not in name}


def main(dist: Path) -> int:
    (from_sdist,) = dist.glob("quart_flet-*.whl")
    (from_tree,) = (dist / "from-tree").glob("quart_flet-*.whl")
    (sdist,) = dist.glob("quart_flet-*.tar.gz")
    problems = []
    shipped = wheel_files(from_sdist)
    source = {
        str(path.relative_to(PACKAGE.parent))
        for path in PACKAGE.rglob("*")
        if path.is_file() and (path.suffix == ".py" or path.name == "py.typed")
    }
    problems += [f"{from_sdist.name} lacks {name}" for name in sorted(source - shipped)]
    problems += [f"{from_sdist.name} has {name}, not in src/" for name in sorted(shipped - source)]
    if shipped != wheel_files(from_tree):
        difference = sorted(shipped ^ wheel_files(from_tree))
        problems.append(f"the wheel from the sdist differs from the tree's: {difference}")
    with tarfile.open(sdist) as archive:
        top = archive.getnames()[0].split("/")[0]
        names = {name.removeprefix(top + "/") for name in archive.getnames()}
    for needed in ("pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md", "tests/conftest.py"):
        if needed not in names:
            problems.append(f"{sdist.name} lacks {needed}")
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if not problems:
        print(f"{from_sdist.name}: {len(shipped)} files, the same from the sdist and the tree")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))

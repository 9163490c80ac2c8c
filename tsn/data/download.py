"""Optional, explicit download of the community's multi-task tarballs, for
users with a network. Nothing else in the package touches the network.

    python -m tsn.data.download pascal --root ~/data     # -> ~/data/PASCAL_MT
    python -m tsn.data.download nyud --root ~/data       # -> ~/data/NYUD_MT
    python -m tsn.data.download pascal --dry-run         # print what would happen
"""

from __future__ import annotations

import argparse
import sys
import tarfile
import urllib.request
from pathlib import Path

from tsn.data import nyud, pascal

SOURCES = {"pascal": (pascal.URL, "PASCAL_MT"), "nyud": (nyud.URL, "NYUD_MT")}


def download(name: str, root: str | Path, keep_archive: bool = False) -> Path:
    url, folder = SOURCES[name]
    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    archive = root / url.rsplit("/", 1)[-1]
    if not archive.exists():
        tmp = archive.with_suffix(".part")

        def progress(blocks: int, block_size: int, total: int) -> None:
            if total > 0:
                sys.stderr.write(f"\r{archive.name}: {min(blocks * block_size / total, 1):.1%}")

        urllib.request.urlretrieve(url, tmp, progress)
        tmp.rename(archive)
        sys.stderr.write("\n")
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")
    if not keep_archive:
        archive.unlink()
    return root / folder


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tsn.data.download", description=__doc__.splitlines()[0])
    ap.add_argument("name", choices=sorted(SOURCES))
    ap.add_argument("--root", default=".", help="folder to download and extract into")
    ap.add_argument("--keep-archive", action="store_true")
    ap.add_argument("--dry-run", action="store_true", help="only print the URL and the destination")
    args = ap.parse_args(argv)
    url, folder = SOURCES[args.name]
    if args.dry_run:
        print(f"{url} -> {Path(args.root).expanduser() / folder}")
        return 0
    print(download(args.name, args.root, args.keep_archive))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Optional, explicit download of the datasets' archives, for users with a
network. Nothing else in the package touches the network.

    python -m tsn.data.download pascal --root ~/data     # -> ~/data/PASCAL_MT
    python -m tsn.data.download nyud --root ~/data       # -> ~/data/NYUD_MT
    python -m tsn.data.download bsds --root ~/data       # -> ~/data/BSR (BSDS500, the Berkeley archive)
    python -m tsn.data.download pascal --dry-run         # print what would happen

The archive is written to ``<archive>.part`` first; an interrupted download
resumes from there when run again (an HTTP Range request; a server that
ignores it sends the whole file, which replaces the part). Its size is checked
against the server's Content-Length and, where known, the archive's published
size before it is renamed and extracted (``--expected-size BYTES`` if the
server's archive legitimately differs). Extraction goes to a temporary
folder beside the destination, which is renamed into place only when
complete; a destination that already exists is left alone.
"""

from __future__ import annotations

import argparse
import http.client
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tsn.data import bsds, nyud, pascal
from tsn.errors import DataError, TSNError

CHUNK = 1 << 20


@dataclass(frozen=True)
class Source:
    url: str
    folder: str  # the archive's top folder
    size: int | None = None  # bytes of the archive when published (None: unknown, the server's word only)
    check: Callable[[Path], object] | None = None  # raises DataError if the extracted folder is not the dataset


SOURCES = {
    "pascal": Source(pascal.URL, "PASCAL_MT"),
    "nyud": Source(nyud.URL, "NYUD_MT"),
    "bsds": Source(bsds.URL, "BSR", bsds.ARCHIVE_SIZE, bsds.find_layout),
}

urlopen = urllib.request.urlopen  # tests replace it


def _progress(name: str, done: int, total: int | None) -> None:
    if total:
        sys.stderr.write(f"\r{name}: {min(done / total, 1):.1%} of {total / 1e6:.1f} MB")


def fetch(url: str, part: Path, expected: int | None = None, timeout: float = 60.0) -> int:
    """Download ``url`` into ``part``, continuing a partial file; returns its size.

    Raises a one-line DataError when the transfer stops early (the part is kept
    for the next try) or the server announces another size than ``expected``."""
    have = part.stat().st_size if part.exists() else 0
    if expected is not None and have > expected:  # not a prefix of the archive: start again
        part.unlink()
        have = 0
    if expected is not None and have == expected:
        return have
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # the range starts past the server's file: start again
            part.unlink()
            return fetch(url, part, expected, timeout)
        raise DataError(f"downloading {url} failed: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", None) or e
        raise DataError(f"downloading {url} failed ({reason}); run the same command again to resume") from None
    with resp:
        status = getattr(resp, "status", None) or resp.getcode() or 200
        if have and status != 206:  # the server ignored the range: the whole file comes, from byte 0
            have = 0
        if have and not resp.headers.get("Content-Range", f"bytes {have}-").startswith(f"bytes {have}-"):
            resp.close()  # a range that does not continue the part: start again
            part.unlink()
            return fetch(url, part, expected, timeout)
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length is not None and length.isdigit() else expected
        if expected is not None and total is not None and total != expected:
            raise DataError(f"{url} is {total} bytes on the server but the published archive is {expected}; "
                            f"if the server's file is the right one, pass --expected-size {total}")
        done = have
        try:
            with open(part, "ab" if have else "wb") as f:
                while chunk := resp.read(CHUNK):
                    f.write(chunk)
                    done += len(chunk)
                    _progress(part.name[: -len(".part")], done, total)
        except (OSError, http.client.HTTPException) as e:  # connection reset, timeout, IncompleteRead
            sys.stderr.write("\n")
            raise DataError(f"the download of {url} stopped at {done} of {total or '?'} bytes ({e}); "
                            f"{part} is kept: run the same command again to resume") from None
    sys.stderr.write("\n")
    size = part.stat().st_size
    if total is not None and size != total:
        raise DataError(f"the download of {url} is incomplete ({size} of {total} bytes); {part} is kept: "
                        "run the same command again to resume")
    return size


def extract(archive: Path, root: Path, folder: str) -> Path:
    """Extract ``archive`` into a temporary folder in ``root``, then rename its ``folder`` into place."""
    dest = root / folder
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder}.extracting.", dir=root))
    try:
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
            raise DataError(f"{archive} is damaged or incomplete ({type(e).__name__}: {e}); delete it and run "
                            "the same command again to download it anew") from None
        if not (tmp / folder).is_dir():
            found = ", ".join(sorted(p.name for p in tmp.iterdir())) or "nothing"
            raise DataError(f"{archive} does not hold the folder {folder}/ (it holds {found})")
        (tmp / folder).rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def download(name: str, root: str | Path, keep_archive: bool = False, expected_size: int | None = None) -> Path:
    """Download and extract dataset ``name`` into ``root``; returns ``root/<its folder>``.

    ``expected_size`` overrides the archive's published size (:data:`SOURCES`)."""
    src = SOURCES[name]
    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    dest = root / src.folder
    if dest.exists():
        sys.stderr.write(f"{dest} exists; nothing to do (delete it to download again)\n")
        return dest
    expected = expected_size if expected_size is not None else src.size
    archive = root / src.url.rsplit("/", 1)[-1]
    if archive.exists():
        size = archive.stat().st_size
        if expected is not None and size != expected:
            raise DataError(f"{archive} is {size} bytes, not {expected}: it is incomplete or another file; "
                            "delete it and run the same command again")
    else:
        part = archive.with_name(archive.name + ".part")
        size = fetch(src.url, part, expected)
        if expected is not None and size != expected:
            raise DataError(f"{part} is {size} bytes, not the archive's {expected}; run the same command again "
                            "to resume, or delete it to start over")
        part.rename(archive)
    dest = extract(archive, root, src.folder)
    if src.check is not None:
        src.check(dest)
    if not keep_archive:
        archive.unlink()
    return dest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tsn.data.download", description=__doc__.splitlines()[0])
    ap.add_argument("name", choices=sorted(SOURCES))
    ap.add_argument("--root", default=".", help="folder to download and extract into")
    ap.add_argument("--keep-archive", action="store_true")
    ap.add_argument("--expected-size", type=int, metavar="BYTES",
                    help="the archive's size in bytes, if the server's differs from the one this code knows")
    ap.add_argument("--dry-run", action="store_true", help="only print the URL and the destination")
    args = ap.parse_args(argv)
    src = SOURCES[args.name]
    if args.dry_run:
        size = args.expected_size or src.size
        print(f"{src.url} -> {Path(args.root).expanduser() / src.folder}" + (f" ({size} bytes)" if size else ""))
        return 0
    try:
        print(download(args.name, args.root, args.keep_archive, args.expected_size))
    except TSNError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

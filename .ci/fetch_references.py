"""Reference sources CI cannot install, for the parity tests that read them by path.

audiocraft 1.3.0's loss balancer (``audiocraft/losses/balancer.py``) and the flashy 0.0.2 module
it takes its moving average from (``flashy/utils.py``): audiocraft as a package pulls in far more
than the tests may install (xformers, a torch of its own), so ``pip download --no-deps`` fetches
the two distributions and only those two files are kept, in ``.ci/cache/references/``, where
``tests/losses/test_balancer.py`` finds them. Any failure here prints why and exits 0: the parity
test then skips, saying the files are missing, and the rest of CI runs.

    python .ci/fetch_references.py [OUT]
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WANTED = {"audiocraft==1.3.0": "audiocraft/losses/balancer.py", "flashy==0.0.2": "flashy/utils.py"}
DEFAULT_OUT = Path(__file__).resolve().parent / "cache" / "references"


def member(archive: Path, suffix: str) -> bytes:
    """The bytes of the one file in a wheel or sdist whose path ends with ``suffix``."""
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as zipped:
            (name,) = [n for n in zipped.namelist() if n.endswith(suffix)]
            return zipped.read(name)
    with tarfile.open(archive) as tarred:
        (info,) = [m for m in tarred.getmembers() if m.isfile() and m.name.endswith(suffix)]
        return tarred.extractfile(info).read()


def fetch(requirement: str, suffix: str, out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, requirement],
                       check=True, timeout=600)
        (archive,) = list(Path(tmp).iterdir())
        target = out / suffix
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(member(archive, suffix))
        print(f"[fetch_references] {requirement}: {target}")


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT
    for requirement, suffix in WANTED.items():
        try:
            fetch(requirement, suffix, out)
        except (OSError, ValueError, subprocess.SubprocessError, tarfile.TarError, zipfile.BadZipFile) as err:
            print(f"[fetch_references] {requirement} not fetched ({type(err).__name__}: {err}); "
                  "the tests that read it will skip")
    return 0


if __name__ == "__main__":
    sys.exit(main())

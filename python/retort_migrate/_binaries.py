"""Finding the migrate-* binaries.

In order:
1. `RETORT_BIN_DIR`, when set (and then only there: a wrong setting is an error, not a fallback);
2. the wheel's own copy: `pip install retort-migrate` puts the binaries in the environment's
   scripts directory (`bin/`, `Scripts\\` on Windows); when the wheel bundles shared libraries,
   those entries are small launchers and the real binaries sit in `retort_migrate.scripts/`
   beside this package, which is used directly (no extra Python start per call);
3. the scripts directory of the running Python (`sysconfig`'s, and the one holding
   `sys.executable`), and the user scheme's (`pip install --user`);
4. `PATH`.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path

EXE = ".exe" if os.name == "nt" else ""


class BinaryNotFoundError(FileNotFoundError):
    """No migrate-* binary where one was looked for; the message lists the places."""


def _executable(directory, name):
    path = Path(directory) / (name + EXE)
    return path if path.is_file() and os.access(path, os.X_OK) else None


def _candidate_dirs():
    here = Path(__file__).resolve().parent
    dirs = [here.parent / "retort_migrate.scripts"]
    for scheme_path in (sysconfig.get_path("scripts"),
                        os.path.dirname(sys.executable),
                        _user_scripts()):
        if scheme_path:
            dirs.append(Path(scheme_path))
    seen, out = set(), []
    for d in dirs:
        key = str(d)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def _user_scripts():
    try:
        scheme = "nt_user" if os.name == "nt" else "posix_user"
        return sysconfig.get_path("scripts", scheme)
    except KeyError:
        return None


def find_binary(name: str) -> str:
    """The path of the binary `name` (e.g. `migrate-up`)."""
    env_dir = os.environ.get("RETORT_BIN_DIR")
    if env_dir:
        found = _executable(env_dir, name)
        if found is None:
            raise BinaryNotFoundError(
                f"RETORT_BIN_DIR={env_dir} has no executable {name}{EXE}; point it at the "
                "directory holding the migrate-* binaries, or unset it to use the installed ones")
        return str(found)
    for d in _candidate_dirs():
        found = _executable(d, name)
        if found is not None:
            return str(found)
    on_path = shutil.which(name)
    if on_path:
        return on_path
    looked = ", ".join(str(d) for d in _candidate_dirs())
    raise BinaryNotFoundError(
        f"{name} not found (looked in {looked} and on PATH); install the wheel into this "
        f"environment ({sys.executable} -m pip install retort-migrate, or uv add retort-migrate), "
        "or set RETORT_BIN_DIR to the directory holding the migrate-* binaries")

"""The ONNX Runtime C/C++ API headers the custom-op library compiles against: found, or fetched.

No PyPI package ships them. :func:`ensure_headers` looks, in order, at

1. ``$ORT_INCLUDE_DIR``: used as given (never replaced); it must hold ``onnxruntime_cxx_api.h``;
2. the cache, ``<cache>/debian-<suite>`` (filled by step 3 once per machine);
3. on Debian-family systems, Debian's ``libonnxruntime-dev`` (from ``trixie`` on: onnxruntime
   1.21, API version 21, and a library built against API 21 loads in every newer onnxruntime).
   ``apt-get`` downloads the package into a private apt state in a temporary directory (its own
   sources list, lists, cache and config, an empty dpkg status: nothing is installed and no
   system file or hook is touched), ``dpkg-deb`` unpacks it there, and the headers move into the
   cache with one rename (a half-filled cache is never visible). Signatures are checked by apt
   with Debian's archive keyring. Proxies: ``http_proxy``/``https_proxy`` in the environment.

Elsewhere the error is one line naming ``ORT_INCLUDE_DIR`` and where to get the headers.
``CONVBERT_EXPORT_ORT_SUITE`` and ``CONVBERT_EXPORT_DEBIAN_MIRROR`` override the suite and the
mirror (default: the Debian mirror in the system's apt sources, else deb.debian.org).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from .errors import BuildError
from .progress import QUIET, Progress

HEADER = "onnxruntime_cxx_api.h"
INCLUDE_ENV = "ORT_INCLUDE_DIR"
SUITE_ENV = "CONVBERT_EXPORT_ORT_SUITE"
MIRROR_ENV = "CONVBERT_EXPORT_DEBIAN_MIRROR"
DEFAULT_SUITE = "trixie"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
PACKAGE = "libonnxruntime-dev"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
#: Seconds each apt-get / dpkg-deb step may take; apt's own network timeout is 30 s per connection.
STEP_TIMEOUT_S = 240

WHERE_TO_GET = (
    f"set {INCLUDE_ENV} to a directory holding {HEADER}: the include/ folder of an onnxruntime "
    "release archive (https://github.com/microsoft/onnxruntime/releases, 1.21 or newer) or "
    f"/usr/include/onnxruntime from Debian's {PACKAGE} (trixie or later)"
)


class HeadersError(BuildError):
    """The ONNX Runtime headers are not available (the message says why and how to get them)."""


def header_api_version(include_dir: Path) -> int | None:
    """``ORT_API_VERSION`` declared in ``include_dir/onnxruntime_c_api.h`` (None if unreadable)."""
    try:
        text = (include_dir / "onnxruntime_c_api.h").read_text(errors="replace")
    except OSError:
        return None
    match = re.search(r"#define\s+ORT_API_VERSION\s+(\d+)", text)
    return int(match.group(1)) if match else None


def ensure_headers(cache_dir: Path, fetch: bool = True, progress: Progress = QUIET) -> Path:
    """The directory holding ``onnxruntime_cxx_api.h``, fetching it into ``cache_dir`` if needed.

    Raises :class:`HeadersError` (one line) when none is configured, cached or fetchable.
    """
    configured = os.environ.get(INCLUDE_ENV)
    if configured:
        path = Path(configured).expanduser()
        if (path / HEADER).is_file():
            return path
        raise HeadersError(
            f"ONNX Runtime headers: {INCLUDE_ENV}={configured} has no {HEADER}; point it at the "
            "directory holding it, or unset it to let convbert-export fetch the headers"
        )
    suite = os.environ.get(SUITE_ENV) or DEFAULT_SUITE
    target = Path(cache_dir) / f"debian-{suite}"
    if (target / HEADER).is_file():
        return target
    problem = debian_problem()
    if problem:
        raise HeadersError(f"ONNX Runtime headers: {HEADER} not found and {problem}; {WHERE_TO_GET}")
    if not fetch:
        raise HeadersError(
            f"ONNX Runtime headers: not fetched yet into {target}; run `convbert-export build-ops`, or {WHERE_TO_GET}"
        )
    mirror = os.environ.get(MIRROR_ENV) or system_debian_mirror() or DEFAULT_MIRROR
    with progress.step(f"fetching ONNX Runtime headers ({PACKAGE} from {mirror} {suite})"):
        return _fetch_from_debian(target, mirror, suite)


def debian_problem() -> str | None:
    """Why Debian's package cannot be fetched here (None when it can)."""
    if not Path("/etc/debian_version").is_file():
        return "this is not a Debian-family system (no /etc/debian_version) to fetch them from"
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            return f"{tool} is not on PATH to fetch Debian's {PACKAGE}"
    if not KEYRING.is_file():
        return f"Debian's archive keyring {KEYRING} is missing (package debian-archive-keyring)"
    return None


def system_debian_mirror() -> str | None:
    """The first Debian archive URI in the system's apt sources (not the security archive)."""
    candidates: list[str] = []
    etc = Path("/etc/apt")
    files = [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*.list")),
             *sorted((etc / "sources.list.d").glob("*.sources"))]  # fmt: skip
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("URIs:"):
                candidates += line.split()[1:]
            elif line.startswith("deb "):
                candidates += [w for w in line.split()[1:] if re.match(r"https?://", w)][:1]
    for uri in candidates:
        if re.match(r"https?://", uri) and uri.rstrip("/").endswith("/debian"):
            return uri.rstrip("/")
    return None


def _apt_config(work: Path, mirror: str, suite: str) -> Path:
    """A private apt configuration: reads no system config part, writes only under ``work``."""
    for sub in ("lists/partial", "cache/archives/partial", "download", "etc"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    (work / "etc" / "sources.list").write_text(f"deb [signed-by={KEYRING}] {mirror} {suite} main\n")
    settings = {
        "Dir::Etc::main": "/dev/null",
        "Dir::Etc::parts": str(work / "etc" / "parts-none"),
        "Dir::Etc::sourcelist": str(work / "etc" / "sources.list"),
        "Dir::Etc::sourceparts": str(work / "etc" / "sourceparts-none"),
        "Dir::Etc::preferences": "/dev/null",
        "Dir::Etc::preferencesparts": str(work / "etc" / "preferences-none"),
        "Dir::State": str(work),
        "Dir::State::Lists": str(work / "lists"),
        "Dir::State::status": "/dev/null",
        "Dir::Cache": str(work / "cache"),
        "Dir::Log": str(work),
        "Debug::NoLocking": "true",
        "APT::Sandbox::User": "root",  # as root: keep privileges (the files are ours); others never switch
        "Acquire::Languages": "none",
        "Acquire::Retries": "2",
        "Acquire::http::Timeout": "30",
        "Acquire::https::Timeout": "30",
    }
    config = work / "etc" / "apt.conf"
    config.write_text("".join(f'{key} "{value}";\n' for key, value in settings.items()))
    return config


def _run(command: list[str], env: dict, cwd: Path, what: str, mirror: str, suite: str) -> str:
    try:
        result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                                timeout=STEP_TIMEOUT_S, check=False)  # fmt: skip
    except subprocess.TimeoutExpired:
        raise HeadersError(
            f"ONNX Runtime headers: {what} from {mirror} ({suite}) took over {STEP_TIMEOUT_S} s and was "
            f"stopped; check the network or set {MIRROR_ENV}, or {WHERE_TO_GET}"
        ) from None
    except OSError as exc:
        raise HeadersError(f"ONNX Runtime headers: {what} could not start ({exc}); {WHERE_TO_GET}") from None
    output = result.stdout + result.stderr
    # apt-get update reports unreachable mirrors as warnings and still exits 0: treat them as errors
    problems = [line.strip() for line in output.splitlines() if re.match(r"\s*(E|W|Err):", line)]
    failed = result.returncode != 0 or any("Failed to fetch" in p or p.startswith("E:") for p in problems)
    if failed:
        fetch_errors = [p for p in problems if "Failed to fetch" in p or p.startswith("E:")]
        detail = (fetch_errors[:1] or problems[-1:] or [ln for ln in output.splitlines() if ln.strip()][-1:]
                  or ["no output"])[0]
        detail = " ".join(detail.split())
        raise HeadersError(
            f"ONNX Runtime headers: {what} from {mirror} ({suite}) failed (exit {result.returncode}): "
            f"{detail}; {WHERE_TO_GET}"
        )
    return output


def _fetch_from_debian(target: Path, mirror: str, suite: str) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="convbert-ort-headers-") as tmp:
        work = Path(tmp)
        env = {**os.environ, "APT_CONFIG": str(_apt_config(work, mirror, suite)), "LC_ALL": "C"}
        _run(["apt-get", "-q", "update"], env, work, "apt-get update", mirror, suite)
        _run(["apt-get", "-q", "download", PACKAGE], env, work / "download", f"apt-get download {PACKAGE}",
             mirror, suite)  # fmt: skip
        debs = sorted((work / "download").glob(f"{PACKAGE}_*.deb"))
        if len(debs) != 1:
            raise HeadersError(f"ONNX Runtime headers: apt-get download left {len(debs)} {PACKAGE} packages; {WHERE_TO_GET}")
        _run(["dpkg-deb", "-x", str(debs[0]), str(work / "root")], env, work, f"dpkg-deb -x {debs[0].name}",
             mirror, suite)  # fmt: skip
        include = work / "root" / "usr" / "include" / "onnxruntime"
        api = header_api_version(include)
        if not (include / HEADER).is_file() or api is None:
            raise HeadersError(
                f"ONNX Runtime headers: {debs[0].name} holds no usable {HEADER} with ORT_API_VERSION "
                f"under /usr/include/onnxruntime; {WHERE_TO_GET}"
            )
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial"))
        try:
            shutil.copytree(include, staging, dirs_exist_ok=True)
            (staging / "source.json").write_text(json.dumps(
                {"package": debs[0].name, "mirror": mirror, "suite": suite, "ort_api_version": api}, indent=2) + "\n")
            try:
                os.replace(staging, target)
            except OSError:  # another process filled the cache first: keep its copy
                if not (target / HEADER).is_file():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target

"""The test suite in one command, on a fresh machine too:

    python -m tests [pytest arguments...]

1. installs the Python packages (`pip install -e '.[test]'`) unless every requirement of the
   project and of its `test` extra is already installed;
2. installs the system packages the suite runs (postgresql, redis-server, chromium,
   chromium-driver) where they are missing, with apt-get when it can (root, or sudo without a
   password), else says in one line what to install;
3. runs pytest on this checkout (`-q` and the arguments given). The fixtures use PostgreSQL and
   Redis on 127.0.0.1 when they answer (MONITOR_TEST_PG_URL / MONITOR_TEST_REDIS_URL), and
   otherwise start private servers from the installed binaries (tests/integration/servers.py).

Uses the standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Debian package -> what shows it is installed
SYSTEM_PACKAGES: dict[str, tuple[str, ...]] = {
    "postgresql": ("initdb", "/usr/lib/postgresql/*/bin/initdb"),
    "redis-server": ("redis-server",),
    "chromium": ("chromium", "chromium-browser", "google-chrome"),
    "chromium-driver": ("chromedriver",),
}


def say(line: str) -> None:
    print(f"tests: {line}", flush=True)


def missing_requirements() -> list[str]:
    """Requirements of the project and of its `test` extra that are not installed (with the
    extras they ask for, one level deep); a version mismatch counts as missing."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pytest brings packaging: nothing is installed yet
        return ["packaging"]
    missing: list[str] = []
    try:
        metadata.version(project["name"])
    except metadata.PackageNotFoundError:
        missing.append(project["name"])
    todo = [Requirement(r) for r in wanted]
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        if str(req) in seen or req.name.lower() == project["name"]:
            continue
        seen.add(str(req))
        if req.marker and not req.marker.evaluate({"extra": ""}):
            continue
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            missing.append(str(req))
            continue
        if not req.specifier.contains(version, prereleases=True):
            missing.append(f"{req} (found {version})")
        for extra in req.extras:
            for sub in metadata.requires(req.name) or []:
                dep = Requirement(sub)
                if dep.marker and dep.marker.evaluate({"extra": extra}):
                    dep.marker = None
                    todo.append(dep)
    return missing


def install_python_packages() -> None:
    missing = missing_requirements()
    if not missing:
        return
    say(f"installing the Python packages (missing: {', '.join(missing[:5])}…)")
    cmd = [sys.executable, "-m", "pip", "install", "-q", "-e", f"{ROOT}[test]"]
    if subprocess.run(cmd, cwd=ROOT).returncode != 0:
        say(f"`{' '.join(cmd)}` failed (see above); the tests need it")
        sys.exit(2)


def present(probes: tuple[str, ...]) -> bool:
    for probe in probes:
        if "*" in probe:
            if any(Path("/").glob(probe.lstrip("/"))):
                return True
        elif shutil.which(probe):
            return True
    return False


def install_system_packages() -> None:
    missing = [pkg for pkg, probes in SYSTEM_PACKAGES.items() if not present(probes)]
    if not missing:
        return
    sudo: list[str] | None = None
    if shutil.which("apt-get"):
        if os.geteuid() == 0:
            sudo = []
        elif (
            shutil.which("sudo")
            and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0
        ):
            sudo = ["sudo", "-n"]
    if sudo is not None:
        say(f"installing {' '.join(missing)} with apt-get")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        lock = ["-o", "DPkg::Lock::Timeout=600"]  # another apt-get may be running
        subprocess.run([*sudo, "apt-get", *lock, "update", "-qq"], env=env)
        apt = [*sudo, "apt-get", *lock, "install", "-y", "-qq", "--no-install-recommends"]
        subprocess.run([*apt, *missing], env=env, stdout=subprocess.DEVNULL)
        missing = [pkg for pkg in missing if not present(SYSTEM_PACKAGES[pkg])]
        if not missing:
            return
    say(
        f"missing system packages: {' '.join(missing)}; install them (Debian/Ubuntu: "
        f"sudo apt-get install {' '.join(missing)}): the tests that need them fail until then"
    )


def main(args: list[str]) -> int:
    os.chdir(ROOT)
    install_python_packages()
    install_system_packages()
    # This checkout's code, in pytest and in every process the tests start (`monitor run`,
    # Celery workers, benchmarks), whatever an earlier editable install points at.
    path = os.environ.get("PYTHONPATH", "")
    if str(ROOT) not in path.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), path) if p)
    cmd = [sys.executable, "-m", "pytest", "-q", *args]
    return subprocess.run(cmd).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Builds of wildduck for macro benchmarks: the tree the benchmark runs from, or a git revision beside it.

``--against REV`` in ``bench_imap.py`` and ``bench_lmtp.py`` measures a second wildduck in the same run. The
revision is checked out with ``git worktree add --detach`` into ``/tmp/wd-<hash>`` (``$WILDDUCK_BUILDS`` instead
of ``/tmp``) and gets its own venv there (``.venv``, made with the base interpreter of the running Python, so both
builds run the same CPython), with Cython, setuptools and wheel, then ``pip install --no-build-isolation -e .``,
which compiles its Cython extensions in place. Both are kept for the next run (a checkout whose HEAD is not the
revision, or a venv that cannot import the revision's compiled modules, is rebuilt). Remove one with
``git worktree remove --force /tmp/wd-<hash>``.

Only this tree's benchmark code runs: the revision's ``wildduck`` is only ever started as a subprocess (``python -m
wildduck ...`` with the revision's venv), so its servers are driven exactly like the current one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from wildduck.testing.server import ServerProcess  # noqa: E402


@dataclass(frozen=True)
class Build:
    """One wildduck to benchmark: the Python that runs it and its source tree."""

    label: str  # short name for tables: "wildduck" (this tree) or the revision's short hash
    python: str
    root: Path
    commit: str  # full hash of HEAD (plus "+dirty" when the tree has uncommitted changes to wildduck/)

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
        """``python -m wildduck ARGS`` with this build; fails loudly."""
        proc = subprocess.run([self.python, "-m", "wildduck", *args], capture_output=True,
                              env={**os.environ, **(env or {})}, cwd=self.root)
        if proc.returncode != 0:
            raise SystemExit(f"wildduck {' '.join(args[:4])} failed with build {self.label} ({self.root}):\n"
                             + proc.stderr.decode(errors="replace")[-3000:])
        return proc

    def init_store(self, config_file: Path, *, env: dict[str, str] | None = None) -> None:
        """Prepare a fresh data directory the way this build wants: ``wildduck init`` where the CLI refuses to
        create a store by itself (newer builds), and no metrics port (two servers of a run must not share one)."""
        source = (self.root / "wildduck" / "cli.py").read_text()
        if "[metrics]" in (self.root / "wildduck" / "default.toml").read_text():
            config_file.write_text(config_file.read_text() + "[metrics]\nenabled = false\n")
        if '"init"' in source or "def init(" in source:
            self.run("--config", str(config_file), "init", env=env)

    def workers_setting(self, workers: int) -> str:
        """The ``[server]`` line for ``workers`` server processes (empty for one, or where this build has no
        workers: it then runs one process, which the benchmark says)."""
        if workers <= 1:
            return ""
        if "workers" not in (self.root / "wildduck" / "default.toml").read_text():
            print(f"note: build {self.label} has no [server] workers; it runs one process", file=sys.stderr)
            return ""
        return f"workers = {workers}\n"

    def server(self, config_file: Path, *, env: dict[str, str] | None = None) -> BuildServer:
        return BuildServer(config_file, self, env=env)

    def describe(self) -> str:
        dirty = " with uncommitted changes to wildduck/" if self.commit.endswith("+dirty") else ""
        return f"{self.label}: {self.commit[:12]}{dirty} ({self.root}, {self.python})"


class BuildServer(ServerProcess):
    """``python -m wildduck serve`` of a given build (``ServerProcess`` always runs this interpreter)."""

    def __init__(self, config_file: Path, build: Build, *, env: dict[str, str] | None = None) -> None:
        super().__init__(config_file, env=env)
        self.build = build

    def start(self, timeout: float = 60.0) -> ServerProcess:
        self.proc = subprocess.Popen(
            [self.build.python, "-m", "wildduck", "serve", "--config", str(self.config_file)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=self.env,
            cwd=self.build.root,
        )
        threading.Thread(target=self._read_log, daemon=True).start()
        if not self._ready.wait(timeout):
            self.kill()
            raise RuntimeError(f"server ({self.build.label}) did not become ready:\n" + "\n".join(self.log[-30:]))
        if not self.ports:
            raise RuntimeError(f"server ({self.build.label}) exited before it was ready:\n"
                               + "\n".join(self.log[-30:]))
        return self


def git(*args: str, cwd: Path = REPO) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def current_build() -> Build:
    """The tree this benchmark runs from, with the running interpreter."""
    try:
        commit = git("rev-parse", "HEAD")
        if git("status", "--porcelain", "--", "wildduck", "setup.py", "pyproject.toml"):
            commit += "+dirty"
    except SystemExit:
        commit = "unknown"
    return Build("wildduck", sys.executable, REPO, commit)


def _speedups_ok(python: Path, root: Path) -> bool:
    """The venv imports wildduck from ``root`` with every compiled module of that revision."""
    check = ("import sys, wildduck, wildduck._speedups as s; from pathlib import Path; "
             "assert Path(wildduck.__file__).resolve().parent == Path(sys.argv[1]).resolve() / 'wildduck'; "
             "missing = [m for m in s.MODULES if s.compiled(m) is None]; "
             "assert not missing, missing")
    return subprocess.run([str(python), "-c", check, str(root)], capture_output=True, cwd="/").returncode == 0


def revision_build(rev: str, log=print) -> Build:
    """A checkout of ``rev`` with its own venv and compiled extensions (made or reused); see the module doc."""
    commit = git("rev-parse", "--verify", f"{rev}^{{commit}}")
    short = commit[:7]
    root = Path(os.environ.get("WILDDUCK_BUILDS", "/tmp")) / f"wd-{short}"
    if root.exists() and (not (root / ".git").exists() or git("rev-parse", "HEAD", cwd=root) != commit):
        raise SystemExit(f"{root} exists but is not a checkout of {commit}: remove it "
                         f"(git worktree remove --force {root}) or set WILDDUCK_BUILDS")
    if not root.exists():
        log(f"checking out {rev} ({short}) into {root}")
        git("worktree", "add", "--detach", str(root), commit)
    if git("status", "--porcelain", "--untracked-files=no", "--", "wildduck", "setup.py", "pyproject.toml",
           cwd=root):
        raise SystemExit(f"{root} has local changes: it must be {commit} exactly")
    venv = root / ".venv"
    python = venv / "bin" / "python"
    if not (python.exists() and _speedups_ok(python, root)):
        log(f"building {short}: venv {venv}, Cython extensions (a minute or two)")
        base = getattr(sys, "_base_executable", sys.executable)
        steps = [
            [base, "-m", "venv", "--clear", str(venv)],
            [str(python), "-m", "pip", "install", "-q", "cython>=3.0", "setuptools>=77", "wheel"],
            [str(python), "-m", "pip", "install", "-q", "--no-build-isolation", "-e", str(root)],
        ]
        for step in steps:
            proc = subprocess.run(step, capture_output=True, cwd=root)
            if proc.returncode != 0:
                raise SystemExit(f"building {short} failed at {' '.join(step)}:\n"
                                 + (proc.stdout + proc.stderr).decode(errors="replace")[-3000:])
        if not _speedups_ok(python, root):
            raise SystemExit(f"the venv of {short} ({venv}) does not import its wildduck with compiled extensions")
    return Build(short, str(python), root, commit)


def fill_once(build: Build, cached: Path, fill: str, *args: str) -> Path:
    """``cached/data`` filled by running the script ``fill`` with ``build``'s Python (arguments: the data directory,
    then ``args``), unless an earlier run finished filling it (``cached/done``)."""
    if not (cached / "done").exists():
        import shutil
        import time

        shutil.rmtree(cached, ignore_errors=True)
        cached.mkdir(parents=True)
        print(f"filling {cached.name} for {build.label} into {cached} ...", flush=True)
        started = time.perf_counter()
        subprocess.run([build.python, "-c", fill, str(cached / "data"), *args], check=True, cwd=build.root)
        (cached / "done").write_text(f"{time.perf_counter() - started:.1f} s\n")
    return cached / "data"


def report_errors(label: str, errors: list[str], shown: int) -> None:
    """Print the first ``shown`` of a run's errors (wrong answers, failed commands)."""
    if errors:
        print(f"\n{label}: {len(errors)} error(s); the first ones:")
        for line in errors[:shown]:
            print("  " + line[:300])


def chosen_builds(build: str | None, against: list[str]) -> list[Build]:
    """The builds a benchmark measures: ``build`` (a revision; None: this checkout) and those ``against``, each
    described on stdout."""
    builds = [revision_build(build) if build else current_build()]
    builds += [revision_build(rev) for rev in against]
    if len({b.commit for b in builds}) < len(builds):
        raise SystemExit("--against names the same commit as the current build")
    for b in builds:
        print(("current " if b is builds[0] else "against ") + b.describe())
    return builds

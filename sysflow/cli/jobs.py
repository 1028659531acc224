"""Ray cluster job submission: ``sysflow submit`` and ``sysflow status --address``.

A run is submitted as a Ray job (``ray.job_submission.JobSubmissionClient``): the workflow, the
inventory and the simulation profile are copied into a fresh directory that becomes the job's
runtime environment ``working_dir``; the job's entrypoint is ``sysflow sim`` (``--sim``) or
``sysflow run`` on those files. Its logs are streamed and its final status reported.

Ray's dashboard requires token authentication (``RAY_AUTH_MODE=token``): the token is read from
``--token-file``, ``$RAY_AUTH_TOKEN``, ``$RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``, kept in a
:class:`sysflow.actors.auth.Secret`, sent as an ``Authorization: Bearer`` header, and never printed,
logged or put into an exception message. Ray is imported only here, and only when used.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sysflow.actors.auth import Secret
from sysflow.errors import SysflowError

__all__ = [
    "JobSpec",
    "RayJobError",
    "RayTarget",
    "entrypoint",
    "job_lines",
    "read_token",
    "submit_and_follow",
]

Echo = Callable[[str], None]

POLL_INTERVAL = 1.0  # seconds between reads of a followed job's status and logs
DEFAULT_TOKEN_FILE = Path.home() / ".ray" / "auth_token"
_TERMINAL = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})


class RayJobError(SysflowError):
    """A job operation failed; ``missing`` when the job (or the cluster) was not found."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


def read_token(token_file: Path | None = None, env: dict[str, str] | None = None) -> Secret | None:
    """The dashboard token: ``token_file``, else ``$RAY_AUTH_TOKEN``, ``$RAY_AUTH_TOKEN_PATH``, ``~/.ray``."""
    environ = os.environ if env is None else env
    if token_file is not None:
        return _token_from(token_file)
    if environ.get("RAY_AUTH_TOKEN"):
        return Secret(environ["RAY_AUTH_TOKEN"].strip())
    if environ.get("RAY_AUTH_TOKEN_PATH"):
        return _token_from(Path(environ["RAY_AUTH_TOKEN_PATH"]))
    return _token_from(DEFAULT_TOKEN_FILE) if DEFAULT_TOKEN_FILE.is_file() else None


def _token_from(path: Path) -> Secret:
    try:
        text = path.expanduser().read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise RayJobError(f"cannot read the Ray token file {path}: {exc.strerror}") from None
    if not text:
        raise RayJobError(f"the Ray token file {path} is empty")
    return Secret(text)


@dataclass(frozen=True)
class RayTarget:
    """A Ray dashboard address and the token to present to it."""

    address: str
    token: Secret | None = None

    @classmethod
    def from_options(cls, address: str, token_file: Path | None = None) -> RayTarget:
        if not address.startswith(("http://", "https://")):
            raise ValueError(f"--address must be the dashboard URL (http://HEAD:8265), not {address!r}")
        return cls(address.rstrip("/"), read_token(token_file))

    def headers(self) -> dict[str, str]:
        return {} if self.token is None else {"Authorization": f"Bearer {self.token.reveal()}"}

    def client(self) -> Any:
        """A ``JobSubmissionClient`` for this target (errors translated, token never shown)."""
        from ray.job_submission import JobSubmissionClient

        with translated(self.address):
            return JobSubmissionClient(self.address, headers=self.headers())


@contextmanager
def translated(address: str) -> Iterator[None]:
    """Ray's connection, authentication and HTTP errors as :class:`RayJobError` (one line, no token)."""
    from ray.exceptions import RayError

    try:
        yield
    except RayJobError:
        raise
    except ConnectionError as exc:
        raise RayJobError(f"cannot reach the Ray dashboard at {address}: {type(exc).__name__}") from None
    except (RuntimeError, RayError) as exc:
        raise RayJobError(f"Ray dashboard at {address}: {_first_line(exc)}", missing=_missing(exc)) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].rstrip(".") if text else type(exc).__name__


def _missing(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "does not exist" in text or "not found" in text


@dataclass(frozen=True)
class JobSpec:
    """What to run in the job: files (copied into its working_dir) and how."""

    workflow: Path
    inventory: Path
    sim: bool = False
    profile: Path | None = None
    audit: str | None = None  # the audit log path as the job sees it
    seed: int = 1


def _staged_name(path: Path, stem: str) -> str:
    return stem + "".join(path.suffixes[-1:])


def entrypoint(spec: JobSpec) -> str:
    """The job's shell command, over the staged file names."""
    argv = ["sim" if spec.sim else "run", _staged_name(spec.workflow, "workflow")]
    argv += ["-i", _staged_name(spec.inventory, "inventory")]
    if spec.sim:
        argv += ["--seed", str(spec.seed)]
        if spec.profile is not None:
            argv += ["--profile", _staged_name(spec.profile, "profile")]
    if spec.audit is not None:
        argv += ["--audit", spec.audit]
    return 'python -c "from sysflow.cli import main; main()" ' + shlex.join(argv)


def stage(spec: JobSpec, into: Path) -> Path:
    """Copy the job's files into ``into`` (its working_dir) under fixed names."""
    shutil.copyfile(spec.workflow, into / _staged_name(spec.workflow, "workflow"))
    shutil.copyfile(spec.inventory, into / _staged_name(spec.inventory, "inventory"))
    if spec.profile is not None:
        shutil.copyfile(spec.profile, into / _staged_name(spec.profile, "profile"))
    return into


def submit(target: RayTarget, spec: JobSpec) -> str:
    """Submit the job; its submission id."""
    client = target.client()
    job_id = f"sysflow-{spec.workflow.stem}-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="sysflow-job-") as tmp:
        stage(spec, Path(tmp))
        with translated(target.address):
            return str(
                client.submit_job(
                    entrypoint=entrypoint(spec),
                    submission_id=job_id,
                    runtime_env={"working_dir": tmp, "env_vars": {"PYTHONUNBUFFERED": "1"}},
                    metadata={"tool": "sysflow", "workflow": spec.workflow.name},
                )
            )


def follow(client: Any, address: str, job_id: str, echo: Echo, timeout: float) -> str:
    """Print the job's new log lines until it ends (or ``timeout`` seconds); its final status."""
    shown = 0
    deadline = time.monotonic() + timeout
    while True:
        with translated(address):
            status = str(client.get_job_status(job_id).value)
            logs = str(client.get_job_logs(job_id))
        final = status in _TERMINAL or time.monotonic() >= deadline
        lines, used = complete_lines(logs[shown:], final=final)
        for line in lines:
            echo(line)
        shown += used
        if final:
            return status
        time.sleep(POLL_INTERVAL)


def complete_lines(text: str, *, final: bool) -> tuple[list[str], int]:
    """The lines of ``text`` to print now and the characters they use (a partial line waits, unless final)."""
    cut = len(text) if final else text.rfind("\n") + 1
    return text[:cut].splitlines(), cut


def submit_and_follow(
    target: RayTarget, spec: JobSpec, *, echo: Echo, follow_logs: bool = True, timeout: float = 3600.0
) -> bool:
    """Submit, stream logs, report the final status; True when the job succeeded."""
    job_id = submit(target, spec)
    echo(f"submitted job {job_id} to {target.address}")
    if not follow_logs:
        return True
    status = follow(target.client(), target.address, job_id, echo, timeout)
    echo(f"job {job_id}: {status.lower()}")
    return status == "SUCCEEDED"


def job_lines(target: RayTarget, job_id: str | None = None) -> list[str]:
    """One line per job of the cluster (or the one named), newest last."""
    client = target.client()
    with translated(target.address):
        jobs = list(client.list_jobs())
    if job_id is not None:
        jobs = [j for j in jobs if job_id in (j.submission_id, j.job_id)]
        if not jobs:
            raise RayJobError(f"no job {job_id!r} on {target.address}", missing=True)
    jobs.sort(key=lambda j: j.start_time or 0)
    return [_job_line(j) for j in jobs] or ["no jobs"]


def _job_line(job: Any) -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime((job.start_time or 0) / 1000))
    message = f"  {job.message}" if job.message else ""
    return (
        f"{job.submission_id or job.job_id}  {job.status.value.lower()}  {started}  {job.entrypoint}{message}"
    )

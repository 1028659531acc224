"""``script`` and ``http`` as a user writes them: validation with file:line, and the rendered commands
run by a real /bin/sh: the script's upload protocol played by hand (asked for, sent, run, removed;
skipped by creates/removes), and requests to a real HTTP server on 127.0.0.1 through each client the
host may have (curl, GNU wget, python3; jq for JSON when python3 is missing)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sysflow.model.modules import CHANGED_MARK, OK_MARK, changed_of
from sysflow.model.workflow import MaintenanceWorkflow, Task
from sysflow.transport import UPLOAD_MARK, UPLOAD_NEEDED
from tests.fixtures.http_server import RecordingHandler, serve
from tests.model.test_modules import _problems


def sh(
    command: str, env: dict[str, str] | None = None, path: str | None = None
) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **(env or {})}
    if path is not None:
        full["PATH"] = path
    return subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=60, env=full)


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tasks", "where", "message"),
    [
        ("  - id: a\n    script: {src: no-such.sh}\n", "wf.yaml:4", "src no-such.sh: no such file on the controller"),
        ("  - id: a\n    script: {src: '{{ vars.x }}'}\n", "wf.yaml:4", "it cannot be a template"),
        ("  - id: a\n    script: {src: SRC, creates: tmp/x}\n", "wf.yaml:4", "path must be absolute"),
        ("  - id: a\n    script: {src: SRC, env: {'A-B': x}}\n", "wf.yaml:4", "not an environment variable name: 'A-B'"),
        ("  - id: a\n    script: {src: SRC, interpreter: \"python3 'x\"}\n", "wf.yaml:4", "No closing quotation"),
        ("  - id: a\n    script: {src: SRC, args: x}\n", "wf.yaml:4", "Input should be a valid list"),
        ("  - id: a\n    http: {url: 'ftp://x/y'}\n", "wf.yaml:4", "url must start with http:// or https://"),
        ("  - id: a\n    http: {url: 'http://x', method: FETCH}\n", "wf.yaml:4", "Input should be 'GET', 'HEAD'"),
        ("  - id: a\n    http: {url: 'http://x', status: [200, 999]}\n", "wf.yaml:4", "not an HTTP status code: 999"),
        ("  - id: a\n    http: {url: 'http://x', headers: {'Bad Name': y}}\n", "wf.yaml:4", "not a header name: 'Bad Name'"),
        ("  - id: a\n    http: {url: 'http://x', json: {'a..b': 1}}\n", "wf.yaml:4", "not a dotted JSON path: 'a..b'"),
        ("  - id: a\n    http: {url: 'http://x', timeout: 0}\n", "wf.yaml:4", "greater than 0"),
        ("  - id: a\n    http: {url: 'http://x', from: controller}\n    delegate_to: lb1\n", "wf.yaml:3", "http from: controller runs on the controller: no delegate_to"),
        ("  - id: a\n    http: {url: 'http://x', from: controller}\n    become: true\n", "wf.yaml:3", "become cannot be used on a local task"),
        ("  - id: a\n    http: {url: 'http://x'}\n    script: {src: SRC}\n", "wf.yaml:3", "one module per task, not script and http"),
    ],
)  # fmt: skip
def test_bad_script_and_http_tasks_are_refused_with_file_and_line(
    tmp_path: Path, tasks: str, where: str, message: str
) -> None:
    src = tmp_path / "s.sh"
    src.write_text("echo hi\n")
    text = _problems(tmp_path, tasks.replace("SRC", str(src)))
    line = next(x for x in text.splitlines() if message in x)
    assert line.startswith(f"{tmp_path / where}"), text


def test_a_script_task_reads_back_the_same_and_is_idempotent_only_with_creates_or_removes(
    tmp_path: Path,
) -> None:
    src = tmp_path / "s.sh"
    src.write_text("echo hi\n")
    plain = Task(id="s", script={"src": str(src)})
    assert plain.module == "script" and not plain.idempotent and plain.rollback is None
    assert plain.upload is not None and plain.upload.src == str(src) and plain.upload.size == 8
    assert Task.model_validate(plain.model_dump(by_alias=True)) == plain  # a stored workflow, resumed
    assert Task(id="s", script={"src": str(src)}, idempotent=True).idempotent  # the user says so
    assert Task(id="s", script={"src": str(src), "creates": "/x"}).idempotent
    api = MaintenanceWorkflow("m")
    assert api.add_task("s", script={"src": str(src)}).run == plain.run
    get = Task(id="h", http={"url": "http://x/"})
    assert get.idempotent and not get.local and get.upload is None
    post = Task(id="h", http={"url": "http://x/", "method": "POST", "from": "controller"})
    assert not post.idempotent and post.local
    assert Task.model_validate(post.model_dump(by_alias=True)) == post


# -- script: the upload protocol by hand ----------------------------------------------------------


class Host:
    """The upload protocol as the host pool plays it: run; when asked, copy the file to the stage
    path and run again with SYSFLOW_SENT."""

    def __init__(self, tmp: Path) -> None:
        self.stage = tmp / "stage"
        self.sent = 0

    def run(self, task: Task, command: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {"SYSFLOW_STAGE": str(self.stage)}
        first = sh(command or task.run, env)
        if first.returncode != UPLOAD_NEEDED or UPLOAD_MARK not in first.stdout.splitlines():
            return first
        assert task.upload is not None
        shutil.copyfile(task.upload.src, self.stage)
        self.stage.chmod(0o600)
        self.sent += 1
        return sh(command or task.run, {**env, "SYSFLOW_SENT": str(task.upload.size)})


def test_script_is_sent_run_with_its_args_env_and_chdir_then_removed(tmp_path: Path) -> None:
    src = tmp_path / "deploy.sh"
    src.write_text('echo "args: $#: $1|$2"\necho "in $(pwd) as $APP_ENV"\necho oops >&2\n')
    work = tmp_path / "work"
    work.mkdir()
    hostile = "x'; touch " + str(tmp_path / "pwned") + "; echo '$HOME `id` \\ &"
    task = Task(
        id="s",
        script={"src": str(src), "args": ["a b", hostile], "chdir": str(work), "env": {"APP_ENV": "prod"}},
    )
    host = Host(tmp_path)
    done = host.run(task)
    assert done.returncode == 0, done.stderr
    assert host.sent == 1 and changed_of(done.stdout) is True
    assert done.stdout.splitlines() == [CHANGED_MARK, f"args: 2: a b|{hostile}", f"in {work} as prod"]
    assert done.stderr == "oops\n"  # the script's own stderr
    assert not host.stage.exists() and not (tmp_path / "pwned").exists()
    again = host.run(task)  # no creates: it runs (and is sent) again
    assert changed_of(again.stdout) is True and host.sent == 2
    assert sh(task.check or "").stdout == "would run deploy.sh\n"
    assert sh(task.check or "").returncode == 1


def test_script_interpreter_from_the_shebang_or_given(tmp_path: Path) -> None:
    src = tmp_path / "report.py"
    src.write_text("#!/usr/bin/env python3\nimport sys\nprint('py', sys.argv[1:])\n")
    task = Task(id="s", script={"src": str(src), "args": ["-v"]})
    done = Host(tmp_path).run(task)
    assert done.stdout.splitlines() == [CHANGED_MARK, "py ['-v']"], done.stderr
    plain = tmp_path / "plain"
    plain.write_text('echo "$0"\n')  # no #!: /bin/sh
    done = Host(tmp_path).run(Task(id="s", script={"src": str(plain)}))
    assert done.stdout.splitlines() == [CHANGED_MARK, str(tmp_path / "stage")]
    bash = Task(id="s", script={"src": str(plain), "interpreter": "bash -e"})
    assert 'exec bash -e "$s" < /dev/null' in bash.run
    done = Host(tmp_path).run(bash)
    assert done.returncode == 0 and done.stdout.splitlines()[0] == CHANGED_MARK


def test_script_creates_and_removes_skip_with_ok_and_send_nothing(tmp_path: Path) -> None:
    src = tmp_path / "init.sh"
    marker = tmp_path / "initialised"
    src.write_text(f"touch {marker}\necho initialised\n")
    task = Task(id="s", script={"src": str(src), "creates": str(marker)})
    host = Host(tmp_path)
    assert sh(task.check or "").stdout == f"would run init.sh ({marker} does not exist)\n"
    first = host.run(task)
    assert first.stdout.splitlines() == [CHANGED_MARK, "initialised"] and marker.exists()
    assert sh(task.check or "").returncode == 0 and sh(task.check or "").stdout == ""
    second = host.run(task)
    assert second.stdout.splitlines() == [OK_MARK, f"skipped: {marker} exists"] and host.sent == 1
    cleanup = tmp_path / "cleanup.sh"
    cleanup.write_text(f"rm {marker}\n")
    gone = Task(id="c", script={"src": str(cleanup), "removes": str(marker)})
    assert changed_of(host.run(gone).stdout) is True and not marker.exists()
    assert host.run(gone).stdout.splitlines() == [OK_MARK, f"skipped: {marker} does not exist"]
    assert sh(gone.check or "").returncode == 0


def test_script_failures_are_named(tmp_path: Path) -> None:
    src = tmp_path / "fail.sh"
    src.write_text("echo half way\nexit 3\n")
    host = Host(tmp_path)
    failed = host.run(Task(id="s", script={"src": str(src)}))
    assert failed.returncode == 3 and failed.stdout.splitlines() == [CHANGED_MARK, "half way"]
    assert failed.stderr == "script: fail.sh exited 3\n" and not host.stage.exists()
    nowhere = sh(Task(id="s", script={"src": str(src), "chdir": str(tmp_path / "nope")}).run)
    assert nowhere.returncode == 1
    assert nowhere.stderr == f"script: directory {tmp_path / 'nope'} does not exist on the host\n"
    task = Task(id="s", script={"src": str(src)})
    (tmp_path / "stage").write_text("something else\n")  # a stale stage: sent again
    asked = sh(task.run, {"SYSFLOW_STAGE": str(tmp_path / "stage")})
    assert asked.returncode == UPLOAD_NEEDED and asked.stdout.strip() == UPLOAD_MARK
    assert not (tmp_path / "stage").exists()
    (tmp_path / "stage").write_text("something else\n")  # ... and sent, yet not the script: refused
    bad = sh(task.run, {"SYSFLOW_STAGE": str(tmp_path / "stage"), "SYSFLOW_SENT": "15"})
    assert (
        bad.returncode == 1 and "script: the file sent to " in bad.stderr and "is not fail.sh" in bad.stderr
    )
    no_sftp = sh(task.run)
    assert no_sftp.stderr == "script: this connection cannot send files\n"


# -- http: a real server on 127.0.0.1 -------------------------------------------------------------


class Handler(RecordingHandler):
    def page(self, body: bytes) -> None:
        if self.path == "/health":
            self.send_text(
                200, json.dumps({"status": "ok", "checks": {"db": "up"}, "items": [{"n": 1}], "live": True})
            )
        elif self.path == "/down":
            self.send_text(503, "database unavailable\n" + "x" * 500)
        elif self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/health")
            self.send_header("Content-Length", "0")
            # said outright: an HTTP/1.0 answer without it let wget 1.21 reuse the closing
            # socket for the redirect's second request now and then ("No data received")
            self.send_header("Connection", "close")
            self.end_headers()
        elif self.path == "/items":
            self.send_text(201, json.dumps({"id": 7, "got": json.loads(body or b"null")}))
        else:
            super().page(body)


@pytest.fixture
def server() -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 (a free port), in a thread of this test."""
    with serve(Handler) as url:
        yield url


def path_without(tmp: Path, *names: str) -> str:
    """A PATH with every program of the usual directories except ``names`` (a host without curl)."""
    bin_dir = tmp / f"bin-without-{'-'.join(names)}"
    bin_dir.mkdir()
    for d in ("/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"):
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            target = bin_dir / name
            if name not in names and not target.exists() and not name.startswith(tuple(names)):
                target.symlink_to(os.path.join(d, name))
    return str(bin_dir)


CLIENTS = {
    "curl": (),
    "wget": ("curl",),
    "python3": ("curl", "wget"),
}


@pytest.fixture(params=list(CLIENTS))
def client_path(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    hide = CLIENTS[request.param]
    if shutil.which(request.param) is None:  # .ci/run installs them: a missing one is a failure
        pytest.fail(f"{request.param} is not installed (apt-get install -y curl wget jq)")
    return path_without(tmp_path, *hide) if hide else None


def test_http_get_ok_with_status_regex_and_json(server: str, client_path: str | None) -> None:
    task = Task(
        id="h",
        http={
            "url": f"{server}/health",
            "match": '"status": "ok"',
            "json": {"checks.db": "up", "items.0.n": 1, "live": True},
            "headers": {"X-Probe": "sysflow"},
            "return_content": True,
        },
    )
    done = sh(task.run, path=client_path)
    assert done.returncode == 0, done.stderr
    assert changed_of(done.stdout) is False
    assert done.stdout.splitlines()[:2] == [OK_MARK, f"GET {server}/health: 200"]
    assert '"checks": {"db": "up"}' in done.stdout  # return_content
    assert Handler.seen[-1][0] == "GET" and Handler.seen[-1][2]["X-Probe"] == "sysflow"
    check = sh(task.check or "", path=client_path)  # the check is the same request
    assert check.returncode == 0 and check.stdout == f"GET {server}/health: 200\n"
    assert len(Handler.seen) == 2


def test_http_failures_say_what_was_expected_and_what_came(server: str, client_path: str | None) -> None:
    down = sh(Task(id="h", http={"url": f"{server}/down"}).run, path=client_path)
    assert down.returncode == 1 and down.stdout == ""
    want = f"http: GET {server}/down: status 503, expected 200; body: database unavailable " + "x" * 179
    assert down.stderr == want + "\n"
    assert (
        sh(
            Task(id="h", http={"url": f"{server}/down", "status": [200, 503]}).run, path=client_path
        ).returncode
        == 0
    )
    moved = sh(Task(id="h", http={"url": f"{server}/moved"}).run, path=client_path)
    assert "status 302, expected 200" in moved.stderr  # redirects are not followed unless asked
    follow = sh(Task(id="h", http={"url": f"{server}/moved", "follow_redirects": True}).run, path=client_path)
    assert follow.returncode == 0, follow.stderr
    rx = sh(Task(id="h", http={"url": f"{server}/health", "match": "^degraded"}).run, path=client_path)
    assert rx.stderr.startswith(f"http: GET {server}/health: the body does not match ^degraded; body: {{")
    js = sh(
        Task(id="h", http={"url": f"{server}/health", "json": {"checks.db": "down"}}).run, path=client_path
    )
    assert js.stderr.startswith(f'http: GET {server}/health: json checks.db is "up", expected "down"; body: ')
    missing = sh(
        Task(id="h", http={"url": f"{server}/health", "json": {"checks.cache": 1}}).run, path=client_path
    )
    assert "json checks.cache is not found, expected 1" in missing.stderr
    refused = sh(Task(id="h", http={"url": "http://127.0.0.1:9/x", "timeout": 5}).run, path=client_path)
    assert refused.returncode == 1 and refused.stderr.startswith(
        "http: GET http://127.0.0.1:9/x: no response: "
    )
    assert "refused" in refused.stderr.lower() or "connect" in refused.stderr.lower(), refused.stderr


def test_http_post_with_a_json_body_is_changed(server: str, client_path: str | None) -> None:
    task = Task(
        id="h", http={"url": f"{server}/items", "method": "POST", "body": {"name": "web1"}, "status": 201}
    )
    done = sh(task.run, path=client_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [CHANGED_MARK, f"POST {server}/items: 201"]
    method, _, headers, body = Handler.seen[-1]
    assert (method, json.loads(body), headers["Content-Type"]) == (
        "POST",
        {"name": "web1"},
        "application/json",
    )
    check = sh(task.check or "", path=client_path)  # a POST is never sent by its check
    assert check.returncode == 1 and check.stdout == f"would send POST {server}/items\n"
    assert len(Handler.seen) == 1
    head = sh(Task(id="h", http={"url": f"{server}/health", "method": "HEAD"}).run, path=client_path)
    assert head.returncode == 0 and changed_of(head.stdout) is False, head.stderr
    put = Task(id="h", http={"url": f"{server}/health", "method": "PUT", "body": "raw text"})
    assert changed_of(sh(put.run, path=client_path).stdout) is True and Handler.seen[-1][3] == b"raw text"


def test_http_json_through_jq_when_python3_is_missing(server: str, tmp_path: Path) -> None:
    if shutil.which("jq") is None:
        pytest.fail("jq is not installed (apt-get install -y jq)")
    path = path_without(tmp_path, "python3")
    ok = sh(
        Task(id="h", http={"url": f"{server}/health", "json": {"items.0.n": 1, "live": True}}).run, path=path
    )
    assert ok.returncode == 0, ok.stderr
    bad = sh(Task(id="h", http={"url": f"{server}/health", "json": {"checks.db": "down"}}).run, path=path)
    assert 'json checks.db is "up", expected "down"' in bad.stderr
    none = path_without(tmp_path, "python3", "jq")
    said = sh(Task(id="h", http={"url": f"{server}/health", "json": {"live": True}}).run, path=none)
    assert said.stderr == f"http: GET {server}/health: neither python3 nor jq on the host reads JSON\n"


def test_http_without_any_client_says_so(server: str, tmp_path: Path) -> None:
    path = path_without(tmp_path, "curl", "wget", "python3")
    said = sh(Task(id="h", http={"url": f"{server}/health"}).run, path=path)
    assert said.returncode == 1
    assert said.stderr == "http: the host has none of curl, GNU wget or python3 to make the request\n"

"""A rolling deploy with ``delegate_to`` over the real sshd: 20 web hosts and a load balancer host.
Each web host is taken out of rotation on the load balancer, upgraded, and put back, with at most 3
out at any time; the load balancer's own log (timestamps written on it) proves the bound. A failed
upgrade stops the rollout and the rollback puts every drained host back on the load balancer."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_modules_sshd import SYSFLOW
from tests.fixtures.sshd import SSHD, host_names

pytestmark = pytest.mark.ssh

WEB = host_names(20, prefix="w")
LB = "lb0001"
OUT_AT_ONCE = 3

WORKFLOW = """\
name: deploy
rollout:
  max_failures: 0
  auto_rollback: true
parallelism:
  max_parallel_servers: 10
  disruption_budget: {{max_unavailable: {out}}}
tasks:
  - id: drain
    targets: web
    delegate_to: {lb}
    run: 'echo "{{{{ host.name }}}} out $(date +%s.%N) on $(hostname) as $(id -un)" >> {{{{ vars.lbdir }}}}/log'
    rollback: 'echo "{{{{ host.name }}}} in $(date +%s.%N) rollback" >> {{{{ vars.lbdir }}}}/log'
  - id: upgrade
    targets: web
    depends_on: [drain]
    run: 'sleep 0.3; echo v2 > {{{{ vars.webdir }}}}/{{{{ host.name }}}}; test {{{{ host.name }}}} != {broken}'
    rollback: 'rm -f {{{{ vars.webdir }}}}/{{{{ host.name }}}}'
  - id: enable
    targets: web
    depends_on: [upgrade]
    delegate_to: {lb}
    run: 'echo "{{{{ host.name }}}} in $(date +%s.%N)" >> {{{{ vars.lbdir }}}}/log'
"""


@pytest.fixture
def hosts_dir() -> Iterator[Path]:
    """What the load balancer and the web hosts keep (the non-root login writes there)."""
    path = Path(tempfile.mkdtemp(prefix="sysflow-deploy-", dir="/tmp"))
    for d in (path, path / "lb", path / "web"):
        d.mkdir(exist_ok=True)
        d.chmod(0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def _deploy(
    sshd: SSHD, tmp: Path, where: Path, *, broken: str = "none"
) -> tuple[str, list[tuple[float, str, str]]]:
    lbdir, webdir = where / "lb", where / "web"
    (tmp / "hosts.ini").write_text(
        "[web]\n" + "\n".join(WEB) + f"\n[lb]\n{LB}\n[all:vars]\nlbdir={lbdir}\nwebdir={webdir}\n"
    )
    config = sshd.write_client_config(tmp / "ssh_config", [*WEB, LB], user=sshd.become_user)
    (tmp / "wf.yaml").write_text(WORKFLOW.format(lb=LB, out=OUT_AT_ONCE, broken=broken))
    try:
        done = subprocess.run(
            [*SYSFLOW, "run", str(tmp / "wf.yaml"), "-i", str(tmp / "hosts.ini"), "--ssh-config", str(config),
             "--known-hosts", str(sshd.known_hosts), "--store", str(tmp / "state.db"), "--approve-all"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the deploy hung: {exc.stdout!s}") from None
    events = []
    for line in (lbdir / "log").read_text().splitlines():
        host, what, when = line.split()[:3]
        events.append((float(when), host, what))
    return done.stdout + done.stderr, sorted(events)


def _rotation(events: list[tuple[float, str, str]]) -> tuple[int, set[str]]:
    """The most hosts out of rotation at once, and those still out at the end."""
    out: set[str] = set()
    most = 0
    for _, host, what in events:
        if what == "out":
            out.add(host)
        else:
            out.discard(host)
        most = max(most, len(out))
    return most, out


def test_a_rolling_deploy_keeps_at_most_three_hosts_out_of_rotation(
    sshd: SSHD, tmp_path: Path, hosts_dir: Path
) -> None:
    output, events = _deploy(sshd, tmp_path, hosts_dir)
    assert "run deploy-" in output and ": completed" in output, output
    assert sorted(h for _, h, w in events if w == "out") == WEB  # every host drained once
    assert sorted(h for _, h, w in events if w == "in") == WEB  # and put back once
    assert 2 <= _rotation(events)[0] <= OUT_AT_ONCE, events
    assert all((hosts_dir / "web" / h).read_text() == "v2\n" for h in WEB)


def test_a_failed_upgrade_stops_the_rollout_and_puts_drained_hosts_back(
    sshd: SSHD, tmp_path: Path, hosts_dir: Path
) -> None:
    output, events = _deploy(sshd, tmp_path, hosts_dir, broken=WEB[4])
    assert "rolled_back" in output, output
    drained = {h for _, h, w in events if w == "out"}
    most, left_out = _rotation(events)
    assert drained and left_out == set(), events  # the load balancer is restored: nobody left out
    assert WEB[4] in drained and most <= OUT_AT_ONCE
    assert len(drained) < len(WEB)  # the rollout stopped: later hosts were never touched
    assert not any((hosts_dir / "web" / h).exists() for h in WEB)  # every upgrade rolled back too

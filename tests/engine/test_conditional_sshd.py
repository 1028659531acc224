"""Injection through host variables on real OpenSSH: substituted values are quoted, never executed."""

from __future__ import annotations

from pathlib import Path

import pytest

from sysflow.actors.auth import SSHAuth
from sysflow.engine.engine import Engine
from sysflow.engine.events import RecordingObserver
from sysflow.engine.states import OpState, RunStatus
from sysflow.model.inventory import Inventory
from sysflow.model.workflow import MaintenanceWorkflow
from tests.fixtures.sshd import SSHD, host_names

pytestmark = [pytest.mark.ssh]


def test_hostile_host_variables_are_quoted_on_a_real_shell(sshd: SSHD, tmp_path: Path) -> None:
    names = host_names(2, prefix="inj")
    out = tmp_path / "out"
    out.mkdir()
    canary = tmp_path / "pwned"
    hostile = {
        "note": f"x; touch {canary}; echo",
        "label": f"$(touch {canary}1)`touch {canary}2`",
        "path_part": f"a b'; touch {canary}3; '",
        "db_password": "s3cret; touch " + str(canary) + "4",
    }
    inventory = Inventory()
    inventory.add_group("app", names)
    for name in names:
        inventory.add_host(name, groups=["app"], **hostile)
    wf = MaintenanceWorkflow("injection")
    wf.add_task(
        "write",
        f"printf '%s|%s|%s|%s' {{{{ vars.note }}}} {{{{ vars.label }}}} {{{{ vars.path_part }}}}"
        f" {{{{ vars.db_password }}}} > {out}/{{{{ host.name }}}}",
    )
    wf.add_task(
        "raw_on_purpose",
        f"echo {{{{ vars.suffix | raw }}}} > {out}/{{{{ host.name }}}}.raw",
        depends_on="write",
        targets=names[0],  # the only host that defines `suffix` (validation refuses the others)
    )
    inventory.add_host(names[0], groups=["app"], suffix="$((40 + 2))")
    events = RecordingObserver()
    config = sshd.write_client_config(tmp_path / "ssh_config", names)
    engine = Engine(
        inventory,
        SSHAuth.from_keyfile(sshd.client_key),
        ssh_config=config,
        known_hosts=sshd.known_hosts,
        observers=[events],
    )
    result = engine.execute(wf)

    assert result.status is RunStatus.COMPLETED, result.reason
    for name in names:
        written = (out / name).read_text()
        assert written == "|".join(hostile.values())  # each value arrived as one literal argument
    assert not list(tmp_path.glob("pwned*"))  # and nothing in them ran
    assert (out / "inj0001.raw").read_text() == "42\n"  # `raw` is shell syntax, on purpose
    assert "raw_on_purpose@inj0002" not in result.ops
    assert result.ops["write@inj0002"].state is OpState.SUCCEEDED
    recorded = result.ops["write@inj0001"].command
    assert "s3cret" not in recorded and "********" in recorded
    assert all("s3cret" not in repr(e.to_dict()) for e in events.events)

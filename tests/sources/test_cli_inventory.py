"""``sysflow inventory list|graph|host`` over static files and a script; errors exit 1 and say why."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from sysflow.cli.root import app

runner = CliRunner()


def site(tmp_path: Path) -> Path:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "hosts.ini").write_text(
        "lone ansible_password=s3cret-value-1\n[web]\nweb1\n[app:children]\nweb\n[app:vars]\nx=1\n"
    )
    script = tmp_path / "more.sh"
    script.write_text('#!/bin/sh\necho \'{"db": ["db1"], "_meta": {"hostvars": {}}}\'\n')
    script.chmod(0o755)
    return tmp_path


def test_graph_draws_every_group_and_ungrouped_hosts(tmp_path: Path) -> None:
    out = runner.invoke(app, ["inventory", "graph", "-i", str(site(tmp_path))])
    assert out.exit_code == 0, out.output
    assert out.stdout.splitlines() == [
        "@all:",
        "  |--@app:",
        "  |  |--@web:",
        "  |  |  |--web1",
        "  |--@db:",
        "  |  |--db1",
        "  |--@ungrouped:",
        "  |  |--lone",
    ]


def test_list_and_host_never_print_a_secret(tmp_path: Path) -> None:
    listed = runner.invoke(app, ["inventory", "list", "-i", str(site(tmp_path))])
    assert listed.exit_code == 0, listed.output
    assert "s3cret-value-1" not in listed.stdout
    body = json.loads(listed.stdout)
    assert body["ungrouped"] == {"hosts": ["lone"]}
    assert body["all"]["children"] == ["ungrouped", "app", "db"]
    host = runner.invoke(app, ["inventory", "host", "-i", str(tmp_path), "lone"])
    assert json.loads(host.stdout)["vars"] == {"ansible_password": {"$secret": "ansible_password"}}


def test_unknown_host_group_and_broken_source_exit_1(tmp_path: Path) -> None:
    site(tmp_path)
    out = runner.invoke(app, ["inventory", "host", "-i", str(tmp_path), "nope"])
    assert out.exit_code == 1 and "unknown host 'nope'" in out.stderr
    out = runner.invoke(app, ["inventory", "graph", "-i", str(tmp_path), "nope"])
    assert out.exit_code == 1 and "no group 'nope'" in out.stderr
    (tmp_path / "more.sh").write_text("#!/bin/sh\necho broken >&2\nexit 2\n")
    out = runner.invoke(app, ["inventory", "list", "-i", str(tmp_path)])
    assert out.exit_code == 1
    assert f"{tmp_path / 'more.sh'}: exited with status 2: broken" in out.stderr


def test_validate_reads_the_dynamic_sources_of_an_inventory(tmp_path: Path) -> None:
    wf = tmp_path / "wf.yaml"
    wf.write_text('name: t\ntasks:\n  - id: a\n    run: "true"\n')
    out = runner.invoke(app, ["validate", str(wf), "-i", str(site(tmp_path / "inv"))])
    assert out.exit_code == 0, out.output
    assert "hosts       3 of 3 in the inventory" in out.stdout  # lone, web1 and the script's db1

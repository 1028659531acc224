"""Ansible dynamic inventory scripts: real executables run with --list (and --host without _meta)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from sysflow.errors import InventoryError
from sysflow.sources import DynamicReader, ScriptSource, load_inventory

LISTING = {
    "web": {"hosts": ["web1", "web2"], "vars": {"http_port": 8080}},
    "db": ["db1"],
    "prod": {"children": ["web", "db"], "vars": {"env": "prod"}},
    "_meta": {"hostvars": {"web1": {"ansible_host": "127.0.0.10"}, "db1": {"role": "primary"}}},
}


def script(path: Path, body: str) -> Path:
    path.write_text("#!/usr/bin/env python3\nimport json, sys, time\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_list_with_meta_reads_groups_children_vars_and_hostvars(tmp_path: Path) -> None:
    src = script(tmp_path / "inv.py", f"assert sys.argv[1] == '--list'\nprint(json.dumps({LISTING!r}))\n")
    inv = ScriptSource(src).read()
    assert list(inv.hosts) == ["web1", "web2", "db1"]
    assert inv.select("prod") == ["web1", "web2", "db1"]
    assert inv.host_vars("web1") == {"env": "prod", "http_port": 8080, "ansible_host": "127.0.0.10"}
    assert inv.host_vars("db1") == {"env": "prod", "role": "primary"}


def test_without_meta_each_host_is_asked_with_host(tmp_path: Path) -> None:
    body = (
        "if sys.argv[1] == '--list':\n"
        "    print(json.dumps({'app': ['a1', 'a2']}))\n"
        "else:\n"
        "    print(json.dumps({'asked': sys.argv[2]}))\n"
    )
    inv = ScriptSource(script(tmp_path / "inv", body)).read()
    assert inv.host_vars("a2") == {"asked": "a2"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("sys.stderr.write('cmdb said no'); sys.exit(3)\n", "exited with status 3: cmdb said no"),
        ("print('{not json')\n", "printed invalid JSON"),
        ("print('[1, 2]')\n", "not an object"),
        ("print(json.dumps({'g': 5}))\n", "group 'g' is neither"),
        ("print(json.dumps({'g': {'hosts': 'h'}}))\n", "hosts must be a list"),
        ("print(json.dumps({'g': {'children': 'x'}}))\n", "children must be a list"),
        ("print(json.dumps({'a': {'children': ['b']}, 'b': {'children': ['a']}}))\n", "its own ancestor"),
        ("print(json.dumps({'_meta': {'hostvars': {'h': 3}}}))\n", "hostvars of 'h'"),
        ("time.sleep(5)\n", "timed out after 0.5s"),
    ],
)
def test_a_failing_script_is_named(tmp_path: Path, body: str, message: str) -> None:
    src = script(tmp_path / "broken.py", body)
    with pytest.raises(InventoryError) as err:
        ScriptSource(src, timeout=0.5).read()
    assert message in str(err.value)
    assert str(src) in str(err.value)


def test_a_script_that_cannot_run_is_named(tmp_path: Path) -> None:
    src = tmp_path / "nointerp"
    src.write_text("#!/nonexistent/interpreter\n")
    src.chmod(0o755)
    with pytest.raises(InventoryError, match="cannot run"):
        ScriptSource(src).read()


def test_scripts_compose_with_static_files_and_group_vars(tmp_path: Path) -> None:
    (tmp_path / "static.ini").write_text("[web]\nweb9\n[lb]\nlb1\n")
    script(tmp_path / "dyn.py", f"print(json.dumps({LISTING!r}))\n")
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "web.yml").write_text("tier: front\n")
    inv = load_inventory(tmp_path, DynamicReader(cache_dir=tmp_path / "cache"))
    assert sorted(inv.select("web")) == ["web1", "web2", "web9"]
    assert inv.host_vars("web9") == {"env": "prod", "http_port": 8080, "tier": "front"}
    assert inv.select("lb") == ["lb1"]


def test_a_single_script_is_an_inventory(tmp_path: Path) -> None:
    src = script(tmp_path / "one.py", f"print({json.dumps(LISTING)!r})\n")
    assert len(load_inventory(src)) == 3

"""A NetBox-shaped CMDB on 127.0.0.1: pagination, token, filters, failures, the cache and its policy."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
from typer.testing import CliRunner

from sysflow.cli.root import app
from sysflow.errors import InventoryError
from sysflow.sources import DynamicReader, load_inventory
from tests.fixtures.http_server import RecordingHandler, serve

TOKEN = "nb-test-token-5f2c9a"


def device(i: int, site: str, role: str, tags: list[str], window: str | None = None) -> dict[str, object]:
    return {
        "id": i,
        "name": f"{role}{i:02d}",
        "site": {"slug": site, "name": site.upper()},
        "role": {"slug": role},
        "tags": [{"slug": t} for t in tags],
        "status": {"value": "active"},
        "primary_ip4": {"address": f"127.0.1.{i}/24"},
        "platform": {"slug": "debian-12"},
        "custom_fields": {"maintenance_window": window},
    }


DEVICES = [
    device(1, "ams1", "web", ["pci"], "Sunday 01:00-03:00"),
    device(2, "ams1", "web", []),
    device(3, "fra1", "db", ["pci", "tier-1"]),
    device(4, "fra1", "web", []),
    device(5, "ams1", "db", []),
]


class NetBox(RecordingHandler):
    """/api/dcim/devices/ with limit/offset pages and the site/role filters; modes for failures."""

    mode: ClassVar[str] = "ok"

    def page(self, body: bytes) -> None:
        if self.headers.get("Authorization") != f"Token {TOKEN}":
            self.send_text(403, '{"detail": "Invalid token"}')
            return
        if NetBox.mode == "500":
            self.send_text(500, "internal error")
            return
        if NetBox.mode == "slow":
            time.sleep(1.0)
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        chosen = [
            d
            for d in DEVICES
            if all(d[k]["slug"] in query[k] for k in ("site", "role") if k in query)  # type: ignore[index]
        ]
        limit, offset = int(query["limit"][0]), int(query.get("offset", ["0"])[0])
        nxt = None
        if offset + limit < len(chosen):
            nxt = f"http://{self.headers['Host']}{url.path}?{url.query.split('&offset')[0]}&offset={offset + limit}"
        self.send_text(
            200, json.dumps({"count": len(chosen), "next": nxt, "results": chosen[offset : offset + limit]})
        )


@pytest.fixture
def netbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("NETBOX_TOKEN", TOKEN)
    NetBox.mode = "ok"
    with serve(NetBox) as url:
        yield url


def config(directory: Path, url: str, extra: str = "") -> Path:
    directory.mkdir(exist_ok=True)
    path = directory / "cmdb.yml"
    path.write_text(
        f"plugin: sysflow.netbox\nurl: {url}\npage_size: 2\ntimeout: 0.3\ncache_ttl: 60\n"
        f"vars:\n  os: platform.slug\n{extra}"
    )
    return path


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def reader(tmp_path: Path, clock: Clock, refresh: bool = False) -> DynamicReader:
    return DynamicReader(refresh=refresh, cache_dir=tmp_path / "cache", now=clock)


def test_devices_become_hosts_with_groups_vars_and_windows(tmp_path: Path, netbox: str) -> None:
    inv = load_inventory(config(tmp_path / "inv", netbox), reader(tmp_path, Clock()))
    assert list(inv.hosts) == ["web01", "web02", "db03", "web04", "db05"]
    assert inv.select("site_ams1:&role_web") == ["web01", "web02"]
    assert inv.select("tag_tier_1") == ["db03"]
    assert inv.host_vars("web01") == {
        "ansible_host": "127.0.1.1",
        "datacenter": "ams1",
        "maintenance_window": "Sunday 01:00-03:00",
        "os": "debian-12",
    }
    pages = [p for _, p, _, _ in NetBox.seen]
    assert len(pages) == 3  # 5 devices, 2 a page
    assert all("status=active" in p for p in pages)
    assert all(h["Authorization"] == f"Token {TOKEN}" for _, _, h, _ in NetBox.seen)


def test_filters_go_to_the_api(tmp_path: Path, netbox: str) -> None:
    path = config(tmp_path / "inv", netbox, "site: [fra1]\nrole: [db]\n")
    inv = load_inventory(path, reader(tmp_path, Clock()))
    assert list(inv.hosts) == ["db03"]
    assert "site=fra1" in NetBox.seen[0][1] and "role=db" in NetBox.seen[0][1]


def test_the_cache_answers_within_its_ttl_and_refresh_asks_again(tmp_path: Path, netbox: str) -> None:
    clock = Clock()
    path = config(tmp_path / "inv", netbox)
    load_inventory(path, reader(tmp_path, clock))
    asked = len(NetBox.seen)
    clock.t += 30
    assert len(load_inventory(path, reader(tmp_path, clock))) == 5
    assert len(NetBox.seen) == asked  # fresh cache: no request
    load_inventory(path, reader(tmp_path, clock, refresh=True))
    assert len(NetBox.seen) == 2 * asked
    clock.t += 61
    load_inventory(path, reader(tmp_path, clock))
    assert len(NetBox.seen) == 3 * asked  # expired: asked again
    assert TOKEN not in "".join(p.read_text() for p in (tmp_path / "cache").iterdir())


def test_an_auth_failure_is_an_error_even_with_a_cache(
    tmp_path: Path, netbox: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = config(tmp_path / "inv", netbox)
    load_inventory(path, reader(tmp_path, Clock()))
    monkeypatch.setenv("NETBOX_TOKEN", "wrong")
    with pytest.raises(InventoryError, match=r"refused the token \(403\)"):
        load_inventory(path, reader(tmp_path, Clock(), refresh=True))
    monkeypatch.delenv("NETBOX_TOKEN")
    with pytest.raises(InventoryError, match="set the environment variable NETBOX_TOKEN"):
        load_inventory(path, reader(tmp_path, Clock(), refresh=True))


@pytest.mark.parametrize("mode", ["500", "slow"])
def test_a_failing_cmdb_with_a_warm_cache_answers_from_it(tmp_path: Path, netbox: str, mode: str) -> None:
    clock = Clock()
    path = config(tmp_path / "inv", netbox)
    load_inventory(path, reader(tmp_path, clock))
    NetBox.mode = mode
    clock.t += 600
    r = reader(tmp_path, clock)
    assert len(load_inventory(path, r)) == 5
    assert "using the cached inventory from 600s ago" in r.warnings[0]
    assert ("HTTP 500" if mode == "500" else "no answer within 0.3s") in r.warnings[0]


def test_a_down_cmdb_without_cache_is_an_error(tmp_path: Path, netbox: str) -> None:
    path = config(tmp_path / "inv", "http://127.0.0.1:9")
    with pytest.raises(InventoryError, match=r"unreachable .* and no cached inventory") as err:
        load_inventory(path, reader(tmp_path, Clock()))
    assert str(path) in str(err.value)


def test_a_down_cmdb_with_a_warm_cache_and_the_stale_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NETBOX_TOKEN", TOKEN)
    clock, inv_dir = Clock(), tmp_path / "inv"
    NetBox.mode = "ok"
    with serve(NetBox) as url:
        load_inventory(config(inv_dir, url), reader(tmp_path, clock))
    clock.t += 3600  # the server is gone and the cache expired
    r = reader(tmp_path, clock)
    inv = load_inventory(inv_dir, r)
    assert len(inv) == 5
    assert "unreachable (ConnectError" in r.warnings[0]
    config(inv_dir, url, "max_stale: 1800\n")
    with pytest.raises(InventoryError, match="3600s old, over max_stale 1800s"):
        load_inventory(inv_dir, reader(tmp_path, clock))
    config(inv_dir, url, "stale: refuse\n")
    with pytest.raises(InventoryError, match="stale: refuse"):
        load_inventory(inv_dir, reader(tmp_path, clock))


def test_cli_list_refresh_and_warning(tmp_path: Path, netbox: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    inv_dir = tmp_path / "inv"
    config(inv_dir, netbox)
    (inv_dir / "static.ini").write_text("[web]\nweb99\n")
    runner = CliRunner()
    listed = runner.invoke(app, ["inventory", "list", "-i", str(inv_dir)])
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout)["_meta"]["hostvars"]["db05"]["datacenter"] == "ams1"
    NetBox.mode = "500"
    host = runner.invoke(app, ["inventory", "host", "-i", str(inv_dir), "web01", "--refresh"])
    assert host.exit_code == 0, host.output
    assert json.loads(host.stdout)["groups"] == ["site_ams1", "role_web", "tag_pci"]
    assert "warning:" in host.stderr and "HTTP 500" in host.stderr
    graph = runner.invoke(app, ["inventory", "graph", "-i", str(inv_dir), "site_fra1"])
    assert graph.stdout.splitlines() == ["@site_fra1:", "  |--db03", "  |--web04"]


def test_a_bad_config_is_refused_with_its_field(tmp_path: Path) -> None:
    path = tmp_path / "cmdb.yml"
    path.write_text("plugin: sysflow.netbox\nurl: ftp://x\ngroup_by: [colour]\n")
    with pytest.raises(InventoryError) as err:
        load_inventory(path, reader(tmp_path, Clock()))
    assert "url" in str(err.value) and "group_by" in str(err.value)

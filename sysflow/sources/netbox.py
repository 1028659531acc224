"""A NetBox-style CMDB as an inventory source: devices over a paginated REST API, cached.

The configuration is a YAML file in the inventory directory with ``plugin: sysflow.netbox``
(:class:`NetBoxConfig`). The token is read from the environment variable it names (never from the
file, never cached). Devices are fetched from ``/api/dcim/devices/`` with NetBox's filters (site,
role, tag, status) and ``limit``/``next`` pagination; each becomes a host whose groups come from
``group_by`` (``site_ams1``, ``role_web``, ``tag_pci``, ``status_active``) and whose variables come
from ``vars`` (dotted paths into the device), ``ansible_host`` from its primary IP, ``datacenter``
from its site, and ``maintenance_window`` from a custom field.

Answers are cached (:mod:`sysflow.sources.cache`) for ``cache_ttl`` seconds; ``refresh`` asks the
CMDB anyway. When the CMDB cannot be reached (down, 5xx, too slow) the ``stale`` policy decides:
``use`` answers from the cache up to ``max_stale`` seconds old (with a warning), ``refuse`` fails.
An authentication failure always fails: a wrong token is not an outage.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
from pydantic import Field, ValidationError

from sysflow.errors import Problem
from sysflow.model.base import FrozenModel, problems_from_validation
from sysflow.model.inventory import Inventory
from sysflow.model.inventory_builder import inventory_error
from sysflow.sources.cache import CacheEntry, SourceCache

__all__ = ["NETBOX_PLUGIN", "CmdbDown", "NetBoxConfig", "NetBoxSource"]

NETBOX_PLUGIN = "sysflow.netbox"
DEVICES = "/api/dcim/devices/"
MAX_PAGES = 10_000  # pages followed at most (a `next` loop ends here)
GroupField = Literal["site", "role", "tag", "status", "platform", "tenant"]


class NetBoxConfig(FrozenModel):
    """What a ``plugin: sysflow.netbox`` file says."""

    plugin: Literal["sysflow.netbox"]
    url: str = Field(description="Base URL of the CMDB (http:// or https://).", pattern=r"^https?://")
    token_env: str = Field("NETBOX_TOKEN", description="Environment variable holding the API token.")
    site: list[str] = Field(default_factory=list, description="Only devices of these site slugs.")
    role: list[str] = Field(default_factory=list, description="Only devices of these role slugs.")
    tag: list[str] = Field(default_factory=list, description="Only devices with these tag slugs.")
    status: list[str] = Field(default_factory=lambda: ["active"], description="Device statuses fetched.")
    group_by: list[GroupField] = Field(
        default_factory=lambda: list[GroupField](["site", "role", "tag"]),
        description="Device fields that make groups (<field>_<slug>).",
    )
    vars: dict[str, str] = Field(default_factory=dict, description="Variable -> dotted path in a device.")
    window_field: str | None = Field(
        "maintenance_window", description="Custom field holding the maintenance window (a weekly spec)."
    )
    page_size: int = Field(1000, ge=1, le=10_000)
    timeout: float = Field(10.0, gt=0, description="Seconds one HTTP request may take.")
    cache_ttl: float = Field(3600.0, ge=0, description="Seconds a cached answer is used without asking.")
    stale: Literal["use", "refuse"] = Field(
        "use", description="When the CMDB is down: use the cache or fail."
    )
    max_stale: float = Field(86_400.0, ge=0, description="stale=use: oldest cached answer used (seconds).")

    def filters(self) -> list[tuple[str, str]]:
        return [(key, v) for key in ("site", "role", "tag", "status") for v in getattr(self, key)]


class CmdbDown(Exception):
    """The CMDB did not answer usefully (connection refused, 5xx, timeout)."""


class _AuthFailed(Exception):
    pass


@dataclass
class NetBoxSource:
    """One NetBox configuration file, read into an inventory."""

    file: Path
    config: NetBoxConfig
    cache_dir: Path
    refresh: bool = False
    now: Callable[[], float] = time.time
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def from_data(cls, file: Path, data: Mapping[str, Any], cache_dir: Path, **kw: Any) -> NetBoxSource:
        try:
            config = NetBoxConfig.model_validate(data)
        except ValidationError as exc:
            problems = problems_from_validation(exc, str(file))
            raise inventory_error(problems, str(file)) from None
        return cls(file, config, cache_dir, **kw)

    @property
    def name(self) -> str:
        return str(self.file)

    def read(self) -> Inventory:
        return to_inventory(self.devices(), self.config, self.name)

    def devices(self) -> list[Any]:
        """The devices, from the cache while fresh, else from the CMDB, else per the stale policy."""
        cache = SourceCache(self.cache_dir, f"{self.config.url}{DEVICES}?{urlencode(self.config.filters())}")
        cached = cache.load()
        now = self.now()
        if cached is not None and not self.refresh and cached.age(now) < self.config.cache_ttl:
            return cached.records
        try:
            records = self._fetch()
        except CmdbDown as exc:
            return self._stale(cached, str(exc), now)
        except _AuthFailed as exc:
            raise inventory_error([Problem(str(exc), self.name)], self.name) from None
        cache.store(CacheEntry(now, records))
        return records

    def _stale(self, cached: CacheEntry | None, why: str, now: float) -> list[Any]:
        if cached is None:
            message = f"CMDB {self.config.url} unreachable ({why}) and no cached inventory"
        elif self.config.stale == "refuse":
            message = f"CMDB {self.config.url} unreachable ({why}); stale: refuse"
        elif cached.age(now) > self.config.max_stale:
            message = (
                f"CMDB {self.config.url} unreachable ({why}); cached inventory is {cached.age(now):.0f}s old, "
                f"over max_stale {self.config.max_stale:g}s"
            )
        else:
            self.warnings.append(
                f"{self.name}: CMDB {self.config.url} unreachable ({why}); "
                f"using the cached inventory from {cached.age(now):.0f}s ago"
            )
            return cached.records
        raise inventory_error([Problem(message, self.name)], self.name)

    def _fetch(self) -> list[Any]:
        token = os.environ.get(self.config.token_env)
        if not token:
            raise _AuthFailed(f"no API token: set the environment variable {self.config.token_env}")
        headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
        query = [*self.config.filters(), ("limit", str(self.config.page_size))]
        url: str | None = f"{self.config.url.rstrip('/')}{DEVICES}?{urlencode(query)}"
        records: list[Any] = []
        with httpx.Client(headers=headers, timeout=self.config.timeout) as client:
            for _ in range(MAX_PAGES):
                if url is None:
                    break
                page = self._page(client, url)
                records += page.get("results") or []
                url = page.get("next")
        return records

    def _page(self, client: httpx.Client, url: str) -> dict[str, Any]:
        try:
            response = client.get(url)
        except httpx.TimeoutException:
            raise CmdbDown(f"no answer within {self.config.timeout:g}s") from None
        except httpx.TransportError as exc:
            raise CmdbDown(f"{type(exc).__name__}: {exc}") from None
        if response.status_code in (401, 403):
            raise _AuthFailed(f"CMDB {self.config.url} refused the token ({response.status_code})")
        if response.status_code >= 500:
            raise CmdbDown(f"HTTP {response.status_code}")
        if response.status_code != 200:
            raise CmdbDown(f"HTTP {response.status_code}: {response.text[:200]}")
        try:
            body = response.json()
        except ValueError:
            raise CmdbDown("answered with invalid JSON") from None
        if not isinstance(body, dict):
            raise CmdbDown("answered with JSON that is not an object")
        return body


# -- devices -> inventory --------------------------------------------------------------------------


def dotted(record: Any, path: str) -> Any:
    """``record["a"]["b"]`` for ``"a.b"``; None where a step is missing."""
    value = record
    for step in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(step)
    return value


def _slugs(device: Mapping[str, Any], key: GroupField) -> list[str]:
    if key == "tag":
        return [str(t.get("slug")) for t in device.get("tags") or [] if isinstance(t, Mapping)]
    value = device.get(key)
    if isinstance(value, Mapping):
        value = value.get("slug", value.get("value"))
    return [] if value in (None, "") else [str(value)]


def to_inventory(devices: list[Any], config: NetBoxConfig, source: str) -> Inventory:
    """Hosts, groups (``<field>_<slug>``) and variables of the devices."""
    inventory = Inventory(source=source)
    for device in devices:
        if not isinstance(device, Mapping) or not device.get("name"):
            continue  # NetBox allows unnamed devices; they cannot be addressed
        name = str(device["name"])
        groups = [f"{key}_{slug}" for key in config.group_by for slug in _slugs(device, key)]
        inventory.add_host(name, groups=[g.replace("-", "_") for g in groups])
        inventory.hosts[name].vars.update(_host_vars(device, config))
    return inventory


def _host_vars(device: Mapping[str, Any], config: NetBoxConfig) -> dict[str, Any]:
    found: dict[str, Any] = {}
    address = dotted(device, "primary_ip4.address") or dotted(device, "primary_ip.address")
    if address:
        found["ansible_host"] = str(address).split("/", 1)[0]
    site = dotted(device, "site.slug")
    if site:
        found["datacenter"] = site
    if config.window_field:
        window = dotted(device, f"custom_fields.{config.window_field}")
        if window:
            found["maintenance_window"] = window
    for var, path in config.vars.items():
        value = dotted(device, path)
        if value is not None:
            found[var] = value
    return found

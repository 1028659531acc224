"""The state of one simulated host, and how rule effects change it.

A host holds package versions, the versions its package index offers (learned by ``apt-get
update``), service states, files, the running and pending kernel, and named snapshots (a backup
restored by a rollback). Read-only rules answer from this state, so before/after verification on
the simulator compares something real.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sysflow.sim.profile import Effect

__all__ = [
    "DEFAULT_AVAILABLE",
    "DEFAULT_KERNEL",
    "DEFAULT_PACKAGES",
    "DEFAULT_SERVICES",
    "HOST_FILES",
    "RHEL_OS_RELEASE",
    "HostState",
]

DEFAULT_PACKAGES: Mapping[str, str] = {
    "bash": "5.2.15-2+b2",
    "libc6": "2.36-9+deb12u3",
    "linux-image-amd64": "6.1.76-1",
    "nginx": "1.22.1-9",
    "openssl": "3.0.11-1~deb12u2",
}
DEFAULT_AVAILABLE: Mapping[str, str] = {
    "libc6": "2.36-9+deb12u9",
    "linux-image-amd64": "6.1.119-1",
    "nginx": "1.22.1-9+deb12u1",
    "openssl": "3.0.15-1~deb12u1",
}
DEFAULT_SERVICES: Mapping[str, str] = {"nginx": "active", "ssh": "active"}
DEFAULT_KERNEL = "6.1.0-18-amd64"
KERNEL_PACKAGE = "linux-image-amd64"
REBOOT_REQUIRED_FILE = "/var/run/reboot-required"
OS_RELEASE = (
    'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
    'VERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n'
)

RHEL_OS_RELEASE = (
    'NAME="Red Hat Enterprise Linux"\nVERSION="9.4 (Plow)"\nID="rhel"\nID_LIKE="fedora"\n'
    'VERSION_ID="9.4"\nPRETTY_NAME="Red Hat Enterprise Linux 9.4 (Plow)"\n'
)
HOST_FILES: Mapping[str, str] = {  # what fact gathering reads (PID 1, memory) besides os-release
    "/proc/1/comm": "systemd\n",
    "/proc/meminfo": "MemTotal:        8131584 kB\nMemFree:         1048576 kB\n"
    "MemAvailable:    6291456 kB\n",
}


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a backup keeps: packages, services and files."""

    packages: Mapping[str, str]
    services: Mapping[str, str]
    files: Mapping[str, str]


@dataclass(slots=True)
class HostState:
    """Mutable state of one simulated host (internal to the simulator)."""

    packages: dict[str, str]
    services: dict[str, str]
    files: dict[str, str]
    kernel: str
    mirror: Mapping[str, str]  # versions the package mirror offers (never changed in place)
    index: Mapping[str, str] = field(default_factory=dict)  # versions known after `apt-get update`
    broken: set[str] = field(default_factory=set)  # services that fail to start until restored
    pending_kernel: str | None = None
    snapshots: dict[str, Snapshot] = field(default_factory=dict)
    reboots: int = 0

    @classmethod
    def initial(
        cls,
        packages: Mapping[str, str] | None = None,
        available: Mapping[str, str] | None = None,
        services: Mapping[str, str] | None = None,
        kernel: str | None = None,
    ) -> HostState:
        """A fresh Debian 12 host; given packages, versions and services are merged over the defaults."""
        return cls(
            packages={**DEFAULT_PACKAGES, **(packages or {})},
            services={**DEFAULT_SERVICES, **(services or {})},
            files={"/etc/os-release": OS_RELEASE, "/etc/debian_version": "12.5\n", **HOST_FILES},
            kernel=kernel or DEFAULT_KERNEL,
            mirror={**DEFAULT_AVAILABLE, **(available or {})},
        )

    def upgradable(self) -> dict[str, str]:
        """Installed packages whose indexed version differs from the installed one."""
        return {p: v for p, v in self.index.items() if p in self.packages and self.packages[p] != v}

    def apply(self, effect: Effect, groups: Mapping[str, str]) -> float | None:
        """Change state by ``effect`` (templates in names filled from ``groups``); reboot seconds or None."""
        if effect.refresh:
            self.index = self.mirror  # shared, not copied: neither is changed in place
        if effect.snapshot is not None:
            self.snapshots[effect.snapshot] = Snapshot(
                dict(self.packages), dict(self.services), dict(self.files)
            )
        if effect.restore is not None:
            self._restore(effect.restore)
        if effect.upgrade is not None:
            self._upgrade(effect.upgrade)
        self._set_packages(effect.packages)
        for name, state in effect.services.items():
            self._set_service(_fill(name, groups), _fill(state, groups))
        for name in effect.break_services:
            self.broken.add(_fill(name, groups))
            self.services[_fill(name, groups)] = "failed"
        for path, content in effect.files.items():
            self._set_file(_fill(path, groups), content)
        return effect.reboot

    @property
    def boot_id(self) -> str:
        """The id of the running boot (``/proc/sys/kernel/random/boot_id``): new at every reboot."""
        return f"5eb00700-0000-4000-8000-{self.reboots:012x}"

    @property
    def reboot_required(self) -> bool:
        """Whether the host asks for a reboot: a new kernel is installed, or the Debian marker file."""
        return self.pending_kernel is not None or REBOOT_REQUIRED_FILE in self.files

    def boot(self) -> None:
        """The host came back from a reboot: new kernel, enabled services started, /run emptied."""
        self.reboots += 1
        self.files.pop(REBOOT_REQUIRED_FILE, None)
        if self.pending_kernel is not None:
            self.kernel, self.pending_kernel = self.pending_kernel, None
        for name in self.services:
            self.services[name] = "failed" if name in self.broken else "active"

    def start_service(self, name: str) -> bool:
        """Start (or restart) a service; False when it is broken and ends up failed."""
        self.services[name] = "failed" if name in self.broken else "active"
        return name not in self.broken

    def _upgrade(self, which: list[str] | str) -> None:
        candidates = self.upgradable()
        names = list(candidates) if which == "all" else [p for p in which if p in candidates]
        for name in names:
            self.packages[name] = candidates[name]
            if name == KERNEL_PACKAGE:
                self.pending_kernel = _kernel_of(candidates[name])

    def _restore(self, name: str) -> None:
        snap = self.snapshots.get(name)
        if snap is None:
            return
        self.packages = dict(snap.packages)
        self.services = dict(snap.services)
        self.files = dict(snap.files)
        self.broken.clear()
        self.pending_kernel = None

    def _set_packages(self, packages: Mapping[str, str | None]) -> None:
        for name, version in packages.items():
            if version is None:
                self.packages.pop(name, None)
            else:
                self.packages[name] = version

    def _set_service(self, name: str, state: str) -> None:
        if state == "active":
            self.start_service(name)
        else:
            self.services[name] = state

    def _set_file(self, path: str, content: str | None) -> None:
        if content is None:
            self.files.pop(path, None)
        else:
            self.files[path] = content


def _fill(template: str, groups: Mapping[str, str]) -> str:
    """Fill ``{name}`` placeholders from a rule match's named groups."""
    return template.format_map(groups) if "{" in template else template


def _kernel_of(package_version: str) -> str:
    """``6.1.119-1`` (linux-image-amd64) → ``6.1.0-119-amd64``-style release string, simplified."""
    upstream = package_version.split("-", 1)[0]
    parts = upstream.split(".")
    abi = parts[2] if len(parts) > 2 else "0"
    return f"{parts[0]}.{parts[1] if len(parts) > 1 else 0}.0-{abi}-amd64"

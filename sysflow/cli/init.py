"""``sysflow init``: write a ready workflow from the library (``sysflow/library/``) into a directory.

``sysflow init --list`` prints the workflows with their one-line descriptions (each workflow's own
``description:``); ``sysflow init NAME DIR`` writes ``DIR/NAME.yaml`` and, when DIR holds no
inventory yet, the workflow's example inventory as ``DIR/inventory.ini``; existing files are never
overwritten unless ``--force``. It then prints how to validate, preview and run the workflow, and
how to rehearse on a local fleet (``sysflow lab``). The library is package data, read through
:mod:`importlib.resources` (no import of the engine: ``--list`` stays fast).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["LibraryWorkflow", "init_command", "library", "write_workflow"]

LIBRARY = "sysflow.library"
INVENTORY_NAMES = ("inventory.ini", "inventory.yaml", "inventory.yml", "hosts", "hosts.ini", "hosts.yaml")
ORDER = (
    "os-patching",
    "rolling-reboot",
    "rolling-deploy",
    "tls-rotation",
    "backup-restore",
    "security-audit",
)
TLS_FILES = ("files/server.crt", "files/server.key.der")  # what tls-rotation's copy tasks send


@dataclass(frozen=True, slots=True)
class LibraryWorkflow:
    """One workflow of the library: its name, description, text and example inventory's text."""

    name: str
    description: str
    text: str
    inventory: str

    def variables(self) -> list[str]:
        """The ``[all:vars]`` names of the example inventory: what the workflow reads."""
        names: list[str] = []
        section = ""
        for line in self.inventory.splitlines():
            line = line.strip()
            if line.startswith("["):
                section = line
            elif section == "[all:vars]" and "=" in line and not line.startswith(("#", ";")):
                name = line.split("=", 1)[0].strip()
                if not name.startswith("ansible_"):
                    names.append(name)
        return names

    def groups(self) -> list[str]:
        """The groups of the example inventory (the workflow's targets and windows name them)."""
        return [
            s.strip()[1:-1]
            for s in self.inventory.splitlines()
            if s.strip().startswith("[") and ":" not in s and s.strip().endswith("]")
        ]


def _root() -> Traversable:
    return resources.files(LIBRARY)


def _description(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("description:"):
            return line.split(":", 1)[1].strip().strip('"')
    return ""


def library() -> dict[str, LibraryWorkflow]:
    """Every workflow of the library by name, in the order ``--list`` prints them."""
    root = _root()
    found = sorted(
        p.name.removesuffix(".yaml") for p in root.joinpath("workflows").iterdir() if p.name.endswith(".yaml")
    )
    names = [n for n in ORDER if n in found] + [n for n in found if n not in ORDER]
    out: dict[str, LibraryWorkflow] = {}
    for name in names:
        text = root.joinpath("workflows", f"{name}.yaml").read_text(encoding="utf-8")
        inventory = root.joinpath("inventories", f"{name}.ini").read_text(encoding="utf-8")
        out[name] = LibraryWorkflow(name, _description(text), text, inventory)
    return out


class InitError(Exception):
    """What ``sysflow init`` refuses, as one line."""


def _stand_in_tls_pair(directory: Path) -> None:
    """A self-signed certificate and DER key in DIR/files so tls-rotation validates (replace them)."""
    if shutil.which("openssl") is None:
        raise InitError("tls-rotation needs openssl on this machine to make its stand-in files/server.crt")
    files = directory / "files"
    files.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp) / "server.key"
        steps = [
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "90", "-subj",
             "/CN=stand-in.example.com", "-keyout", str(key), "-out", str(files / "server.crt")],
            ["openssl", "pkey", "-in", str(key), "-outform", "DER", "-out", str(files / "server.key.der")],
        ]  # fmt: skip
        for argv in steps:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
            if done.returncode != 0:
                raise InitError(f"openssl failed making the stand-in certificate: {done.stderr.strip()}")
    (files / "server.key.der").chmod(0o600)


def write_workflow(name: str, directory: Path, *, force: bool = False) -> list[str]:
    """Write workflow ``name`` (and its example inventory when DIR has none) into ``directory``;
    return the lines to print. Raises :class:`InitError` for an unknown name or a file in the way."""
    known = library()
    if name not in known:
        raise InitError(f"no workflow {name!r} in the library; sysflow init --list shows: {', '.join(known)}")
    wf = known[name]
    if directory.exists() and not directory.is_dir():
        raise InitError(f"{directory} exists and is not a directory")
    target = directory / f"{name}.yaml"
    existing = [directory / n for n in INVENTORY_NAMES if (directory / n).exists()]
    extra = [directory / f for f in TLS_FILES] if name == "tls-rotation" else []
    in_the_way = [p for p in (target, *extra) if p.exists()]
    if in_the_way and not force:
        paths = ", ".join(str(p) for p in in_the_way)
        raise InitError(f"{paths}: already there, not overwritten (--force overwrites)")
    directory.mkdir(parents=True, exist_ok=True)
    target.write_text(wf.text, encoding="utf-8")
    lines = [f"wrote {target}"]
    if existing:
        inventory = existing[0]
        lines.append(
            f"kept {inventory}: this workflow reads the variables {', '.join(wf.variables())} "
            f"and targets the groups {', '.join(wf.groups())} (see the workflow's header)"
        )
    else:
        inventory = directory / "inventory.ini"
        inventory.write_text(wf.inventory, encoding="utf-8")
        lines.append(f"wrote {inventory} (an example: replace its hosts with yours)")
    if extra:
        _stand_in_tls_pair(directory)
        lines.append(f"wrote {extra[0]} and {extra[1]}: a self-signed stand-in, replace both with yours")
    lines += _next_steps(name, directory, inventory, wf)
    return lines


def _next_steps(name: str, directory: Path, inventory: Path, wf: LibraryWorkflow) -> list[str]:
    here = name == "tls-rotation"  # its copy tasks read files/ relative to where sysflow runs
    wf_path = f"{name}.yaml" if here else str(directory / f"{name}.yaml")
    inv = inventory.name if here else str(inventory)
    cd = f"cd {directory} && " if here else ""
    lab_vars = " ".join(f"-e {v}=..." for v in wf.variables())
    return [
        "",
        "next:",
        f"  {cd}sysflow validate {wf_path} -i {inv}        # check it against the inventory",
        f"  {cd}sysflow run {wf_path} -i {inv} --check     # what would run where; nothing runs",
        f"  {cd}sysflow run {wf_path} -i {inv} -K          # run it (-K: sudo's password)",
        "rehearse on a local fleet first (sshd on loopback aliases of this machine):",
        "  sysflow lab up --hosts 4        # writes sysflow-lab/inventory.ini (groups web, db, cache)",
        f"  {cd}sysflow run {wf_path} -i sysflow-lab/inventory.ini --ssh-config sysflow-lab/ssh_config "
        f"--known-hosts sysflow-lab/known_hosts {lab_vars} --check",
        "  sysflow lab down",
        "  (lab hosts are this machine: give the variables harmless stand-ins with -e before a real run)",
    ]


def init_command(
    name: Annotated[str | None, typer.Argument(help="Workflow of the library (see --list).")] = None,
    directory: Annotated[Path | None, typer.Argument(help="Directory to write it into.")] = None,
    list_all: Annotated[bool, typer.Option("--list", help="List the library's workflows.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that are already there.")] = False,
) -> None:
    """Write a ready, commented workflow (and an example inventory) from the library into DIR."""
    if list_all or name is None:
        known = library()
        width = max(len(n) for n in known)
        for wf in known.values():
            typer.echo(f"{wf.name:<{width}}  {wf.description}")
        if not list_all:
            typer.echo("\nsysflow init NAME DIR writes one into DIR")
        return
    if directory is None:
        typer.echo(f"error: sysflow init {name} DIR: give the directory to write into", err=True)
        raise typer.Exit(2)
    try:
        lines = write_workflow(name, directory, force=force)
    except (InitError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    for line in lines:
        typer.echo(line)

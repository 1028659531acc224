"""The lab: a throwaway local OpenSSH fleet on loopback aliases, for trying ``sysflow run`` over SSH."""

from __future__ import annotations

from sysflow.lab.fleet import LabBusy, LabError, LabHost, LabUp, lab_down, lab_hosts, lab_up, running_pids

__all__ = ["LabBusy", "LabError", "LabHost", "LabUp", "lab_down", "lab_hosts", "lab_up", "running_pids"]

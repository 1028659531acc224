"""Patch orchestration: baselines, read-only scans, pinned installs, compliance reports.

* :mod:`.records` — what a scan finds on a host (frozen values);
* :mod:`.apt`, :mod:`.dnf` — parsers of the package managers' own output (tested on recordings);
* :mod:`.scan` — the read-only script a scan runs on each host and the reading of its output;
* :mod:`.baseline` — the baseline users write (YAML or Python) and its evaluation per host;
* :mod:`.install` — the workflow that installs exactly the approved versions, pinned, in waves;
* :mod:`.report` — compliance per baseline (JSON, Markdown, HTML); :mod:`.store` keeps scans.
"""

"""``sysflow serve``: the operations service above the engine (optional extra ``sysflow[server]``).

* :mod:`~sysflow.service.roles`: roles (viewer, operator, approver, admin) and what each may do;
* :mod:`~sysflow.service.tokens`: API tokens, shown once and stored only as SHA-256 hashes;
* :mod:`~sysflow.service.config`: where the service keeps its files, and its policy (four eyes);
* :mod:`~sysflow.service.library`: stored workflows and inventories with their digests;
* :mod:`~sysflow.service.worker` / :mod:`~sysflow.service.workers`: runs in worker processes the
  service owns (the engine's owner and lease rules apply to them as to any controller);
* :mod:`~sysflow.service.hub`: the live event stream with ids, replay and slow-client dropping;
* :mod:`~sysflow.service.actions`: start, approve, reject, pause, resume, cancel: authorized, audited,
  written as the same store controls ``sysflow approve``/``pause``/``cancel`` write;
* :mod:`~sysflow.service.app`: the Starlette app (REST API, streams, ``/metrics``, console).

Nothing below the service imports it. Nothing is imported here, so ``sysflow --help`` stays light
and the library works without the extra installed.
"""

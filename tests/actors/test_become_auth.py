"""SSHAuth's become passwords: a host's own (``ansible_become_password``) before the shared one
(``--ask-become-pass``), both masked as :class:`Secret`."""

from __future__ import annotations

from sysflow.actors.auth import SSHAuth


async def test_host_password_wins_over_the_shared_one() -> None:
    auth = SSHAuth().with_become(lambda: "shared-pw").with_host_become({"db1": "db-pw"}.get)
    db, web = await auth.credentials("db1"), await auth.credentials("web1")
    assert db.become_password is not None and db.become_password.reveal() == "db-pw"
    assert web.become_password is not None and web.become_password.reveal() == "shared-pw"
    assert "pw" not in repr(db) + repr(web)
    alone = await SSHAuth().with_host_become({"db1": "db-pw"}.get).credentials("web1")
    assert alone.become_password is None

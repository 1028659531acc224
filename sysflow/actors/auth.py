"""Credentials for SSH, asked for at connect time and never written down.

Why: fleets rotate keys and passwords; a long run must pick up the new credential at its next
connect, and nothing secret may ever reach a disk, a log, an event, a ``repr()`` or an exception
message. So a :class:`CredentialProvider` is asked for :class:`Credentials` each time the transport
opens a connection (``refresh=True`` after an authentication failure, to ask once more), and
secrets travel as :class:`Secret` values that refuse to print or pickle.

:class:`SSHAuth` is the stock provider: key files (passphrase from environment, keyring or a
callback; an OpenSSH certificate beside or given), ssh-agent, passwords, and a ``become`` (sudo)
password. Decrypted keys are cached in memory per file and reloaded when the file changes (a
rotated key) or when a refresh is asked. asyncssh is imported lazily.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, Protocol, runtime_checkable

from sysflow.errors import AuthenticationFailed

__all__ = [
    "CredentialProvider",
    "Credentials",
    "SSHAuth",
    "Secret",
    "SecretSource",
    "callback_secret",
    "env_secret",
    "keyring_secret",
]

_MASK = "********"

SecretSource = Callable[[], "str | Awaitable[str | None] | None"]
"""Where a secret comes from: called at connect time; may be async; None means 'none given'."""


class Secret:
    """A secret string that never shows itself: masked in ``repr``/``str``, refuses to pickle."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for the one place that must hand it over (asyncssh, sudo's stdin)."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({_MASK!r})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled: credentials are asked for where they are used")


def env_secret(name: str) -> SecretSource:
    """A secret read from environment variable ``name`` at each connect."""

    def read() -> str | None:
        return os.environ.get(name)

    read.__qualname__ = f"env_secret({name!r})"
    return read


def callback_secret(fn: Callable[[], str | Awaitable[str | None] | None]) -> SecretSource:
    """A secret returned by ``fn`` (sync or async) at each connect."""
    return fn


def keyring_secret(service: str, username: str) -> SecretSource:
    """A secret read from the system keyring (the optional ``keyring`` package) at each connect."""

    def read() -> str | None:
        try:
            import keyring  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            raise AuthenticationFailed("the keyring package is not installed") from None
        value: str | None = keyring.get_password(service, username)
        return value

    return read


async def _resolve(source: SecretSource | None) -> Secret | None:
    if source is None:
        return None
    value = source()
    if inspect.isawaitable(value):
        value = await value
    return Secret(value) if value is not None else None


@dataclass(frozen=True, slots=True)
class Credentials:
    """What one connect may use. Secrets are :class:`Secret`; keys are loaded asyncssh keys."""

    username: str | None = None
    client_keys: tuple[Any, ...] = ()  # asyncssh SSHKey, or (SSHKey, SSHCertificate) pairs
    agent_path: str | None = None
    password: Secret | None = field(default=None, repr=False)
    become_password: Secret | None = field(default=None, repr=False)

    @property
    def uses_agent(self) -> bool:
        return self.agent_path is not None


@runtime_checkable
class CredentialProvider(Protocol):
    """Asked for credentials at every connect; ``refresh`` after an authentication failure."""

    async def credentials(
        self, host: str, *, refresh: bool = False, identity_files: Sequence[str] = ()
    ) -> Credentials: ...


@dataclass(frozen=True, slots=True)
class KeyFile:
    """A private key file, how to get its passphrase, and an optional certificate file."""

    path: Path
    passphrase: SecretSource | None = None
    certificate: Path | None = None
    optional: bool = False  # an ssh_config IdentityFile: skipped when missing, as ssh does


_Signature = tuple[tuple[int, int, int] | None, tuple[int, int, int] | None]


@dataclass(frozen=True, slots=True)
class _LoadedKey:
    signature: _Signature  # (mtime_ns, size, inode) of the key and of its certificate
    keypair: Any


def _stat(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _certificate_path(kf: KeyFile) -> str:
    """The certificate given, else OpenSSH's ``<key>-cert.pub`` beside the key (used if it exists)."""
    return str(kf.certificate) if kf.certificate is not None else f"{kf.path}-cert.pub"


def _load_keypair(path: Path, passphrase: str | None, cert: Path | None) -> Any:
    import asyncssh

    try:
        key = asyncssh.read_private_key(path, passphrase)
        if cert is None:
            return key
        return (key, asyncssh.read_certificate(cert))
    except (asyncssh.KeyImportError, OSError, ValueError) as exc:
        # asyncssh's messages name the problem ("Passphrase must be specified", "Incorrect
        # passphrase"), never the passphrase itself; the path is not secret.
        reason = type(exc).__name__ if not isinstance(exc, asyncssh.KeyImportError) else str(exc)
        raise AuthenticationFailed(f"cannot load key {path}: {reason}") from None


class SSHAuth:
    """The stock :class:`CredentialProvider`: key files, agent, password, become password.

    Build it with ``from_keyfile``, ``from_agent``, ``from_env`` or ``from_password``; combine
    with ``with_key``, ``with_agent``, ``with_password``, ``with_become`` (each returns a copy).
    """

    def __init__(
        self,
        *,
        username: str | None = None,
        key_files: Sequence[KeyFile] = (),
        agent: bool | str = False,
        password: SecretSource | None = None,
        become_password: SecretSource | None = None,
        identity_passphrase: SecretSource | None = None,
        host_become: Callable[[str], str | None] | None = None,
    ) -> None:
        self.username = username
        self.key_files = tuple(key_files)
        self.agent = agent
        self._password = password
        self._become = become_password
        self._identity_passphrase = identity_passphrase
        self._host_become = host_become
        self._keys: dict[Path, _LoadedKey] = {}
        self._lock: asyncio.Lock | None = None

    # -- constructors -----------------------------------------------------------------------------

    @classmethod
    def from_keyfile(
        cls,
        path: str | os.PathLike[str],
        passphrase_env: str | None = None,
        *,
        passphrase: SecretSource | None = None,
        certificate: str | os.PathLike[str] | None = None,
        username: str | None = None,
    ) -> SSHAuth:
        """A private key file; its passphrase from ``passphrase_env`` or a ``passphrase`` source."""
        source = passphrase if passphrase is not None else _env_or_none(passphrase_env)
        cert = Path(certificate).expanduser() if certificate is not None else None
        return cls(username=username, key_files=[KeyFile(Path(path).expanduser(), source, cert)])

    @classmethod
    def from_agent(cls, path: str | None = None, *, username: str | None = None) -> SSHAuth:
        """Keys held by ssh-agent (``path`` or ``$SSH_AUTH_SOCK``)."""
        return cls(username=username, agent=path or True)

    @classmethod
    def from_password(
        cls, source: SecretSource | None = None, *, env: str | None = None, username: str | None = None
    ) -> SSHAuth:
        """Password authentication, the password from a callback ``source`` or ``env``."""
        if source is None and env is None:
            raise ValueError("from_password needs a callback or an environment variable name")
        return cls(username=username, password=source if source is not None else env_secret(str(env)))

    @classmethod
    def from_env(cls, prefix: str = "SYSFLOW_SSH_") -> SSHAuth:
        """Read ``<prefix>USER``, ``KEY_FILE``, ``CERT_FILE`` now; ``PASSPHRASE``, ``PASSWORD``,
        ``BECOME_PASSWORD`` at each connect; use ssh-agent when ``SSH_AUTH_SOCK`` is set."""
        env = os.environ
        keys: list[KeyFile] = []
        if key := env.get(f"{prefix}KEY_FILE"):
            cert = env.get(f"{prefix}CERT_FILE")
            keys.append(
                KeyFile(
                    Path(key).expanduser(),
                    env_secret(f"{prefix}PASSPHRASE"),
                    Path(cert).expanduser() if cert else None,
                )
            )
        return cls(
            username=env.get(f"{prefix}USER"),
            key_files=keys,
            agent=bool(env.get("SSH_AUTH_SOCK")),
            password=env_secret(f"{prefix}PASSWORD"),
            become_password=env_secret(f"{prefix}BECOME_PASSWORD"),
            identity_passphrase=env_secret(f"{prefix}PASSPHRASE"),
        )

    # -- combinators ------------------------------------------------------------------------------

    def _copy(self, **changes: Any) -> SSHAuth:
        fields: dict[str, Any] = {
            "username": self.username,
            "key_files": self.key_files,
            "agent": self.agent,
            "password": self._password,
            "become_password": self._become,
            "identity_passphrase": self._identity_passphrase,
            "host_become": self._host_become,
        }
        fields.update(changes)
        return SSHAuth(**fields)

    def with_key(
        self,
        path: str | os.PathLike[str],
        passphrase_env: str | None = None,
        *,
        passphrase: SecretSource | None = None,
        certificate: str | os.PathLike[str] | None = None,
    ) -> SSHAuth:
        other = SSHAuth.from_keyfile(path, passphrase_env, passphrase=passphrase, certificate=certificate)
        return self._copy(key_files=self.key_files + other.key_files)

    def with_agent(self, path: str | None = None) -> SSHAuth:
        return self._copy(agent=path or True)

    def with_password(self, source: SecretSource | None = None, *, env: str | None = None) -> SSHAuth:
        return self._copy(password=SSHAuth.from_password(source, env=env)._password)

    def with_become(self, source: SecretSource | None = None, *, env: str | None = None) -> SSHAuth:
        """Add a sudo password (fed to ``sudo -S`` on stdin, never echoed)."""
        if source is None and env is None:
            raise ValueError("with_become needs a callback or an environment variable name")
        return self._copy(become_password=source if source is not None else env_secret(str(env)))

    def with_host_become(self, lookup: Callable[[str], str | None]) -> SSHAuth:
        """A sudo password per host (``ansible_become_password``); where ``lookup`` gives None, the
        password of :meth:`with_become` applies."""
        return self._copy(host_become=lookup)

    def with_username(self, username: str | None) -> SSHAuth:
        return self._copy(username=username)

    def __repr__(self) -> str:
        parts = [f"username={self.username!r}"] if self.username else []
        parts += [f"key_files={[str(k.path) for k in self.key_files]!r}"] if self.key_files else []
        parts += ["agent"] if self.agent else []
        parts += ["password=<provider>"] if self._password else []
        parts += ["become=<provider>"] if self._become else []
        return f"SSHAuth({', '.join(parts)})"

    # -- the provider -----------------------------------------------------------------------------

    async def credentials(
        self, host: str, *, refresh: bool = False, identity_files: Sequence[str] = ()
    ) -> Credentials:
        """Credentials for one connect to ``host``; keys reloaded if changed on disk or ``refresh``."""
        files = _with_identity_files(self.key_files, identity_files, self._identity_passphrase)
        keys = await self._keypairs(files, refresh)
        agent = self.agent
        agent_path = (agent if isinstance(agent, str) else os.environ.get("SSH_AUTH_SOCK")) if agent else None
        return Credentials(
            username=self.username,
            client_keys=keys,
            agent_path=agent_path,
            password=await _resolve(self._password),
            become_password=await self._become_for(host),
        )

    async def _become_for(self, host: str) -> Secret | None:
        own = self._host_become(host) if self._host_become is not None else None
        return Secret(own) if own is not None else await _resolve(self._become)

    async def _keypairs(self, files: Sequence[KeyFile], refresh: bool) -> tuple[Any, ...]:
        """Loaded keys; one stat per key and certificate per connect decides whether to reload."""
        if refresh:
            self._keys.clear()
        out: list[Any] = []
        for kf in files:
            cert = _certificate_path(kf)
            sig = (_stat(str(kf.path)), _stat(cert))
            if sig[0] is None and kf.optional:
                continue
            cached = self._keys.get(kf.path)
            if cached is None or cached.signature != sig:
                cached = await self._reload(kf, cert, sig)
            out.append(cached.keypair)
        return tuple(out)

    async def _reload(self, kf: KeyFile, cert: str, sig: _Signature) -> _LoadedKey:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # many connects at once: decrypt the key once
            cached = self._keys.get(kf.path)
            if cached is not None and cached.signature == sig:
                return cached
            secret = await _resolve(kf.passphrase)
            phrase = secret.reveal() if secret is not None else None
            certificate = Path(cert) if sig[1] is not None or kf.certificate is not None else None
            keypair = await asyncio.to_thread(_load_keypair, kf.path, phrase, certificate)
            loaded = _LoadedKey(sig, keypair)
            self._keys[kf.path] = loaded
            return loaded


@functools.lru_cache(maxsize=256)
def _expanded(identity_files: tuple[str, ...]) -> tuple[Path, ...]:
    return tuple(Path(f).expanduser() for f in identity_files)


def _with_identity_files(
    key_files: Sequence[KeyFile], identity_files: Sequence[str], passphrase: SecretSource | None
) -> list[KeyFile]:
    """The provider's keys, then ssh_config's IdentityFile entries not among them (used if they exist)."""
    files = list(key_files)
    if not identity_files:
        return files
    known = {k.path for k in files}
    for p in _expanded(tuple(identity_files)):
        if p not in known:
            files.append(KeyFile(p, passphrase, optional=True))
    return files


def _env_or_none(name: str | None) -> SecretSource | None:
    return env_secret(name) if name else None

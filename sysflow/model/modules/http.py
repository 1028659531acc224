"""``http``: one HTTP request, from the host (``curl``, else GNU ``wget``, else ``python3``) or from the
controller (``from: controller``: the task runs locally, as ``delegate_to: localhost`` does).

The response must have one of the ``status`` codes (default 200); ``body`` (an extended regular
expression, as ``grep -E`` reads it) must match somewhere in the response body, and each ``json``
entry (a dotted path such as ``checks.db`` or ``items.0.name``, and the JSON value found there) must
hold. Otherwise the task fails with what was asked and what came back, with the first 200 bytes of
the body: ``http: GET http://127.0.0.1:8080/health: status 503, expected 200; body: ...``.

A read-only request (GET, HEAD, OPTIONS) reports ok, any other changed. The check (what ``resume``
and check mode ask) is the same request for a read-only one, and "would send" for the others. A
health check that must wait repeats through the task's own ``retries`` (and ``until``/``delay``).
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from sysflow.model.base import FrozenModel
from sysflow.model.durations import Duration
from sysflow.model.modules.base import CHANGED_MARK, OK_MARK, ModuleActions, assign

__all__ = ["BODY_SHOWN", "READ_ONLY", "HttpModule"]

READ_ONLY = ("GET", "HEAD", "OPTIONS")  # reported ok; their check is the request itself
IDEMPOTENT = (*READ_ONLY, "PUT", "DELETE")  # RFC 9110: repeating them is safe
BODY_SHOWN = 200  # bytes of a response body a failure shows
_HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"  # an HTTP token
_JSON_PATH = r"^[^.\s]+(\.[^.\s]+)*$"

Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

# Fallback client: python3's urllib (argv: method url timeout out body-file follow verify headers...);
# prints the status, or the error on stderr and exits 1. No braces: commands are templates.
_PY_CLIENT = """\
import ssl, sys, urllib.error, urllib.request
m, u, t, out, q, follow, verify = sys.argv[1:8]
class Stay(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None
handlers = [] if follow == "1" else [Stay()]
if verify != "1":
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    handlers.append(urllib.request.HTTPSHandler(context=c))
data = open(q, "rb").read() if q else None
req = urllib.request.Request(u, data=data, method=m)
for h in sys.argv[8:]:
    k, _, v = h.partition(":")
    req.add_header(k.strip(), v.strip())
try:
    r = urllib.request.build_opener(*handlers).open(req, timeout=float(t))
except urllib.error.HTTPError as e:
    r = e
except Exception as e:
    sys.exit(str(e))
with open(out, "wb") as f:
    f.write(r.read())
print(r.code)
"""

# One json entry (argv: body-file dotted-path expected-json): exit 0 when it holds, else print what
# is there (or why not) and exit 1.
_PY_JSON = """\
import json, sys
try:
    cur = json.load(open(sys.argv[1], "rb"))
except ValueError:
    print("the body is not JSON")
    sys.exit(1)
want = json.loads(sys.argv[3])
for seg in sys.argv[2].split("."):
    if isinstance(cur, list) and seg.lstrip("-").isdigit() and -len(cur) <= int(seg) < len(cur):
        cur = cur[int(seg)]
    elif isinstance(cur, dict) and seg in cur:
        cur = cur[seg]
    else:
        print("not found")
        sys.exit(1)
same = cur == want and isinstance(cur, bool) == isinstance(want, bool)
print(json.dumps(cur)[:200])
sys.exit(0 if same else 1)
"""


def _one_line(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError("must be one line (no newline)")
    return value


class HttpModule(FrozenModel):
    """One request: ``method`` ``url`` with ``headers`` and ``body``; the answer checked."""

    url: str = Field(min_length=1, description="http:// or https:// URL (seen from where it runs).")
    method: Method = Field("GET", description="GET, HEAD and OPTIONS report ok; the others changed.")
    headers: dict[str, str] = Field(default_factory=dict, description="Request headers.")
    body: str | dict[str, Any] | list[Any] | None = Field(
        None, description="Request body: text, or a mapping/list sent as JSON (Content-Type set)."
    )
    status: list[int] = Field(
        default_factory=lambda: [200], min_length=1, description="Status codes that count as success."
    )
    body_regex: str | None = Field(
        None,
        alias="match",
        min_length=1,
        description="Extended regular expression (grep -E) the response body must match.",
    )
    json_values: dict[str, Any] = Field(
        default_factory=dict,
        alias="json",
        description="Dotted path in the JSON response (e.g. checks.db, items.0.name) -> the value it "
        "must have.",
    )
    timeout: Duration = Field(30.0, gt=0, description="Give up on the request after this long.")
    follow_redirects: bool = Field(False, description="Follow 3xx redirects (else a 3xx is the answer).")
    validate_certs: bool = Field(True, description="Verify the server's TLS certificate.")
    return_content: bool = Field(False, description="Print the response body after the status line.")
    from_: Literal["host", "controller"] = Field(
        "host", alias="from", description="Where the request is made: each target host, or the controller."
    )

    @field_validator("status", mode="before")
    @classmethod
    def _as_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, int | str) else value

    @field_validator("status")
    @classmethod
    def _codes(cls, value: list[int]) -> list[int]:
        bad = [code for code in value if not 100 <= code <= 599]
        if bad:
            raise ValueError(f"not an HTTP status code: {', '.join(map(str, bad))}")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        _one_line(value)
        if not value.startswith(("http://", "https://", "{{")):
            raise ValueError(f"url must start with http:// or https://: {value!r}")
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not re.fullmatch(_HEADER_NAME, name):
                raise ValueError(f"not a header name: {name!r}")
            if "\n" in text or "\r" in text:
                raise ValueError(f"header {name}: must be one line (no newline)")
        return value

    @field_validator("json_values")
    @classmethod
    def _paths(cls, value: dict[str, Any]) -> dict[str, Any]:
        bad = [path for path in value if not re.fullmatch(_JSON_PATH, path)]
        if bad:
            raise ValueError(f"not a dotted JSON path: {', '.join(map(repr, bad))}")
        return value

    @model_validator(mode="after")
    def _regex(self) -> HttpModule:
        if self.body_regex is not None:
            _one_line(self.body_regex)
        return self

    @property
    def read_only(self) -> bool:
        return self.method in READ_ONLY

    def _body_text(self) -> str | None:
        if self.body is None or isinstance(self.body, str):
            return self.body
        return json.dumps(self.body, separators=(",", ":"))

    def _headers_sent(self) -> list[str]:
        sent = [f"{name}: {text}" for name, text in self.headers.items()]
        if not isinstance(self.body, str | None) and not any(
            n.lower() == "content-type" for n in self.headers
        ):
            sent.append("Content-Type: application/json")
        return sent

    def actions(self) -> ModuleActions:
        request = self._request()
        mark = OK_MARK if self.read_only else CHANGED_MARK
        run = request + (
            f"echo {shlex.quote(mark)}\n"
            "printf '%s\\n' \"$method $url: $code\"\n" + ('cat -- "$b"\n' if self.return_content else "")
        )
        if self.read_only:
            check = request + "printf '%s\\n' \"$method $url: $code\"\n"
        else:
            check = (
                assign(method=self.method, url=self.url)
                + "printf '%s\\n' \"would send $method $url\"\nexit 1\n"
            )
        return ModuleActions(
            run=run, check=check, idempotent=self.method in IDEMPOTENT, local=self.from_ == "controller"
        )

    def _request(self) -> str:
        """The request and the checks of its answer: on success ``$code`` and the body in ``$b``."""
        body = self._body_text()
        headers = self._headers_sent()
        values: dict[str, str | int] = {
            "method": self.method,
            "url": self.url,
            "tmo": f"{self.timeout:g}",
            "want": " " + " ".join(map(str, self.status)) + " ",
        }
        values.update({f"h{i}": h for i, h in enumerate(headers)})
        if body is not None:
            values["body"] = body
        hvars = [f'"$h{i}"' for i in range(len(headers))]
        sent = '"$q"' if body is not None else "''"
        curl = ["curl", "-sS", "-g", "-o", '"$b"', "-w", "'%{http_code}'", "--max-time", '"$tmo"']
        curl += ["-I"] if self.method == "HEAD" else ["-X", '"$method"']
        curl += (["-L"] if self.follow_redirects else []) + ([] if self.validate_certs else ["-k"])
        curl += [x for h in hvars for x in ("-H", h)]
        curl += ["--data-binary", '@"$q"'] if body is not None else []
        wget = ["wget", "-nv", "-S", "-O", '"$b"', "--content-on-error", "--tries=1", '--timeout="$tmo"']
        wget += ['--method="$method"']
        wget += [] if self.follow_redirects else ["--max-redirect=0"]
        wget += [] if self.validate_certs else ["--no-check-certificate"]
        wget += [f"--header={h}" for h in hvars]
        wget += ['--body-file="$q"'] if body is not None else []
        python = ["python3", "-c", '"$pyc"', '"$method"', '"$url"', '"$tmo"', '"$b"', sent]
        python += ["1" if self.follow_redirects else "0", "1" if self.validate_certs else "0", *hvars]
        expected = ", ".join(map(str, self.status))
        out = (
            assign(**values)
            + assign(pyc=_PY_CLIENT)
            + "b=$(mktemp) && e=$(mktemp) && q=$(mktemp) || exit 1\n"
            'trap \'rm -f -- "$b" "$e" "$q"\' EXIT\n'
            + ('printf \'%s\' "$body" > "$q" || exit 1\n' if body is not None else "")
            + "code=\n"
            "if command -v curl >/dev/null 2>&1; then\n"
            f'  code=$({" ".join(curl)} -- "$url" 2>"$e")\n'
            '  if [ "$code" = 000 ]; then code=; fi\n'
            + ('  if [ -n "$code" ]; then : > "$b"; fi\n' if self.method == "HEAD" else "")
            + "elif command -v wget >/dev/null 2>&1 && wget --help 2>&1 | grep -q -- '--method'; then\n"
            f'  {" ".join(wget)} -- "$url" 2>"$e"\n'
            "  code=$(sed -n 's/^ *HTTP\\/[0-9.]* \\([0-9][0-9][0-9]\\).*/\\1/p' \"$e\" | tail -n 1)\n"
            "elif command -v python3 >/dev/null 2>&1; then\n"
            f'  code=$({" ".join(python)} 2>"$e")\n'
            "else\n"
            "  echo 'http: the host has none of curl, GNU wget or python3 to make the request' >&2\n  exit 1\n"
            "fi\n"
            'if [ -z "$code" ]; then\n'
            '  printf \'%s\\n\' "http: $method $url: no response: $(grep . "$e" | tail -n 1)" >&2\n  exit 1\nfi\n'
            "shown() { printf '%s' \"$(head -c "
            + str(BODY_SHOWN)
            + " -- \"$b\" | tr '\\n\\r\\t' '   ')\"; }\n"
            'case "$want" in\n'
            '  *" $code "*) ;;\n'
            f"  *) printf '%s\\n' \"http: $method $url: status $code, expected {expected}; body: $(shown)\" >&2\n"
            "     exit 1 ;;\n"
            "esac\n"
        )
        if self.body_regex is not None:
            out += assign(rx=self.body_regex) + (
                'if ! grep -Eq -- "$rx" "$b"; then\n'
                "  printf '%s\\n' \"http: $method $url: the body does not match $rx; body: $(shown)\" >&2\n"
                "  exit 1\nfi\n"
            )
        if self.json_values:
            out += assign(pyj=_PY_JSON) + (
                "jc() {\n"
                '  if command -v python3 >/dev/null 2>&1; then got=$(python3 -c "$pyj" "$b" "$1" "$2")\n'
                "  elif command -v jq >/dev/null 2>&1; then\n"
                "    if ! jq -e . \"$b\" >/dev/null 2>&1; then got='the body is not JSON'; false\n"
                "    else\n"
                "      got=$(jq -c --argjson p \"$3\" 'getpath($p)' \"$b\" 2>/dev/null) || got='not found'\n"
                '      jq -e --argjson p "$3" --argjson w "$2" \'getpath($p) == $w\' "$b" >/dev/null 2>&1\n'
                "    fi\n"
                "  else\n"
                "    printf '%s\\n' \"http: $method $url: neither python3 nor jq on the host reads JSON\" >&2\n"
                "    exit 1\n"
                "  fi && return 0\n"
                "  printf '%s\\n' \"http: $method $url: json $1 is $got, expected $2; body: $(shown)\" >&2\n"
                "  exit 1\n"
                "}\n"
            )
            for path, value in self.json_values.items():
                steps = [int(s) if s.lstrip("-").isdigit() else s for s in path.split(".")]
                out += (
                    f"jc {shlex.quote(path)} {shlex.quote(json.dumps(value))} "
                    f"{shlex.quote(json.dumps(steps))}\n"
                )
        return out

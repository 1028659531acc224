"""Injection on real OpenSSH: hostile values in every quoting a template may put them in never run.

Each payload tries to create a marker file. It reaches the command three ways — a host variable, a
fact (the remote ``/etc/os-release`` and ``uname -r``, served by stand-ins on the test sshd's PATH for
this test only), a registered result (the stdout of an earlier task) — and lands three ways: bare
``{{ }}``, inside ``'...'``, inside ``"..."``, and ``| quote``d inside code a second shell runs
(``sh -c '... {{ x | quote }}'``). Every command prints its values NUL-separated to a
file; the file must hold every payload byte for byte and no marker may exist.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from sysflow.actors.auth import SSHAuth
from sysflow.engine.engine import Engine
from sysflow.engine.states import OpState, RunStatus
from sysflow.errors import WorkflowError
from sysflow.model.inventory import Inventory
from sysflow.model.workflow import MaintenanceWorkflow
from tests.fixtures.sshd import SSHD, host_names

pytestmark = [pytest.mark.ssh]

FORMS = {"bare": "{{ %s }}", "single": "'{{ %s }}'", "double": '"{{ %s }}"', "nested": "{{ %s | quote }}"}


def payloads(marks: Path) -> dict[str, str]:
    m = f"{marks}/"
    return {
        "semi": f"x; touch {m}semi; y",
        "subst": f"$(touch {m}subst)",
        "backtick": f"`touch {m}backtick`",
        "newline": f"x\ntouch {m}newline\necho y",
        "squote": f"x'; touch {m}squote; echo 'y",
        "dquote": f'x"; touch {m}dquote; echo "y',
        "backslash": f"x\\'; touch {m}bs1; echo \\\"; touch {m}bs2; #\\",
        "var": "$HOME ${HOME} $(( 6 * 7 )) $0",
        "all": f"'\"`$(touch {m}all1)`\"'\\$(touch {m}all2)\n;touch {m}all3 #",
    }


def word_payloads(marks: Path) -> dict[str, str]:
    """Payloads without whitespace: ``uname -r`` gives one word."""
    m = f"{marks}/"
    return {
        "k_subst": f"$(touch${{IFS}}{m}k1)",
        "k_tick": f"`touch${{IFS}}{m}k2`",
        "k_semi": f";touch${{IFS}}{m}k3;",
        "k_quotes": f"'\"\\';touch${{IFS}}{m}k4;#",
    }


@pytest.fixture
def stand_ins(sshd: SSHD, tmp_path: Path) -> Iterator[dict[str, str]]:
    """``cat`` and ``uname`` on the sshd's PATH that add hostile facts, removed afterwards."""
    marks = tmp_path / "marks"
    facts = {f"SF_{k.upper()}": v for k, v in payloads(marks).items() if "\n" not in v}
    kernel = word_payloads(marks)["k_quotes"]
    release = tmp_path / "os-release"
    real = Path("/etc/os-release").read_text() if Path("/etc/os-release").exists() else "ID=debian\n"
    release.write_text(real + "".join(f"{k}={shlex.quote(v)}\n" for k, v in facts.items()))
    bin_dir = sshd.workdir / "bin"
    scripts = {
        "cat": f'#!/bin/sh\n[ "$1" = /etc/os-release ] && exec /bin/cat {shlex.quote(str(release))}\nexec /bin/cat "$@"\n',
        "uname": f'#!/bin/sh\n[ "$1" = -r ] && {{ printf "%s\\n" {shlex.quote(kernel)}; exit 0; }}\nexec /bin/uname "$@"\n',
    }
    for name, body in scripts.items():
        path = bin_dir / name
        assert not path.exists()
        path.write_text(body)
        path.chmod(0o755)
    try:
        yield {**facts, "kernel": kernel}
    finally:
        for name in scripts:
            (bin_dir / name).unlink()


def _printf(refs: list[str], form: str, out: Path) -> str:
    args = " ".join(FORMS[form] % ref for ref in refs)
    if form == "nested":  # code for a second shell: | quote quotes each value for it too
        return f"sh -c 'printf \"%s\\0\" {args}' > {out}"
    return f"printf '%s\\0' {args} > {out}"


def test_payloads_through_vars_facts_and_results_never_run(
    sshd: SSHD, tmp_path: Path, stand_ins: dict[str, str]
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    hostile = payloads(marks)
    names = host_names(2, prefix="qi")
    inventory = Inventory()
    inventory.add_group("app", names)
    for name in names:
        inventory.add_host(name, groups=["app"], **{f"p_{k}": v for k, v in hostile.items()})

    wf = MaintenanceWorkflow("quoting")
    expected: dict[str, list[str]] = {}
    var_refs = [f"vars.p_{k}" for k in hostile]
    fact_keys = [k for k in stand_ins if k != "kernel"]
    fact_refs = [f"facts.os_release.{k}" for k in fact_keys] + ["facts.kernel"]
    result_refs = [f"results.r_{k}.stdout" for k in hostile]
    for k in hostile:  # each registered result is a payload, printed by the remote shell
        wf.add_task(f"emit_{k}", f"printf '%s' {{{{ vars.p_{k} }}}}", register_as=f"r_{k}")
    emits = [f"emit_{k}" for k in hostile]
    for source, refs, values in (
        ("vars", var_refs, list(hostile.values())),
        ("facts", fact_refs, [stand_ins[k] for k in fact_keys] + [stand_ins["kernel"]]),
        ("results", result_refs, list(hostile.values())),
    ):
        for form in FORMS:
            task = f"{source}_{form}"
            wf.add_task(task, _printf(refs, form, out / f"{task}-{{{{ host.name }}}}"), depends_on=emits)
            expected[task] = values

    config = sshd.write_client_config(tmp_path / "ssh_config", names)
    engine = Engine(
        inventory, SSHAuth.from_keyfile(sshd.client_key), ssh_config=config, known_hosts=sshd.known_hosts
    )
    result = engine.execute(wf)

    assert sorted(p.name for p in marks.iterdir()) == []  # nothing any payload tried ran
    assert result.status is RunStatus.COMPLETED, result.reason
    for task, values in expected.items():
        for name in names:
            assert result.ops[f"{task}@{name}"].state is OpState.SUCCEEDED
            printed = (out / f"{task}-{name}").read_bytes().decode().split("\0")[:-1]
            assert printed == values, task  # each value arrived as itself, one argument
    assert len(expected) == 12 and len(hostile) == 9


def test_a_template_the_shell_would_misread_is_refused_before_anything_runs(
    sshd: SSHD, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    inventory = Inventory()
    inventory.add_group("app", host_names(1, prefix="qr"))
    for name in inventory.hosts:
        inventory.add_host(name, groups=["app"], evil=f"$(touch {marks}/x)")
    wf = MaintenanceWorkflow("refused")
    with pytest.raises(WorkflowError, match="inside backquotes"):
        wf.add_task("t", "echo `echo {{ vars.evil }}`")
    wf.add_task("ok", "echo ok")
    wf.add_task("raw_quote", f"echo {{{{ vars.q | raw }}}}{{{{ vars.evil }}}} > {tmp_path}/rq")
    for name in inventory.hosts:  # a raw value opens a quote the validator could not see
        inventory.add_host(name, groups=["app"], q="'")
    config = sshd.write_client_config(tmp_path / "ssh_config", inventory.hosts)
    engine = Engine(
        inventory, SSHAuth.from_keyfile(sshd.client_key), ssh_config=config, known_hosts=sshd.known_hosts
    )
    result = engine.execute(wf)
    op = result.ops[f"raw_quote@{next(iter(inventory.hosts))}"]
    # the value landed inside the quote the raw value opened: escaped for it, so the shell sees an
    # unterminated quote and fails, and nothing in the value ran
    assert op.state is OpState.FAILED
    assert not any(marks.iterdir())

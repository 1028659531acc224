"""Values in commands are escaped for the shell quoting they land in, or refused where none is safe.

The renderer is checked three ways: exact renders per context; refusals (at validation, with the
template position, and at render time); and real shells (dash as /bin/sh, bash) running rendered
commands over hostile values, which must come back byte for byte and never execute anything.
"""

from __future__ import annotations

import string
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sysflow.errors import WorkflowError
from sysflow.model.loader import load_yaml
from sysflow.model.shellquote import (
    ARITH,
    COMMENT,
    DOUBLE,
    HEREDOC,
    NESTED,
    PLAIN,
    SINGLE,
    classify,
)
from sysflow.model.templates import TemplateError, render, template_references

SHELLS = ["/usr/bin/dash", "/usr/bin/bash"]


def ctx(value: object, **more: object) -> dict[str, object]:
    return {"host": {"name": "h1"}, "vars": {"v": value, **more}, "facts": {}, "results": {}}


def test_each_context_gets_its_own_escaping() -> None:
    v = "a'b\"c$d`e\\f g"
    assert render("echo {{ vars.v }}", ctx(v)).command == "echo 'a'\"'\"'b\"c$d`e\\f g'"
    assert render("echo '{{ vars.v }}'", ctx(v)).command == "echo 'a'\\''b\"c$d`e\\f g'"
    assert render('echo "{{ vars.v }}"', ctx(v)).command == 'echo "a\'b\\"c\\$d\\`e\\\\f g"'
    # mixed in one word, and quotes opened and closed around several values
    assert render("echo x{{ vars.v }}'y{{ vars.v }}'\"{{ vars.v }}\"", ctx("'")).command == (
        "echo x''\"'\"'''y'\\'''\"'\""
    )
    assert render("echo '{{ vars.n }}' {{ vars.n }}", ctx(1, n=None)).command == "echo '' ''"


def test_classify_reads_quotes_escapes_and_substitutions() -> None:
    m = "\0{}\0".format
    skeleton = (
        f"a {m(0)} '{m(1)}' \"{m(2)}\" \\' {m(3)} \"\\\" {m(4)}\" $(echo {m(5)} '{m(6)}') "
        f"'\"' {m(7)} # it's {m(8)}\n{m(9)} \"$(x {m(10)})\" cat <<E\n{m(11)}\nE\n{m(12)} $(( {m(13)} ))"
    )
    contexts, refused = classify(skeleton)
    assert contexts == {
        0: PLAIN,
        1: SINGLE,
        2: DOUBLE,
        3: PLAIN,
        4: DOUBLE,
        5: PLAIN,
        6: SINGLE,
        7: PLAIN,
        9: PLAIN,
        12: PLAIN,
    }
    assert refused == {8: COMMENT, 10: NESTED, 11: HEREDOC, 13: ARITH}


REFUSED = {
    "echo `{{ vars.v }}`": "inside backquotes",
    'echo "`{{ vars.v }}`"': "inside backquotes",
    'echo "$(echo {{ vars.v }})"': "inside $( ) that is inside double quotes",
    "echo $'{{ vars.v }}'": "inside $'...'",
    'echo $"{{ vars.v }}"': 'inside $"..."',
    "echo ${X:-{{ vars.v }}}": "inside ${...}",
    "cat <<EOF\n{{ vars.v }}\nEOF": "inside a heredoc",
    "cat <<-'EOF'\n\t{{ vars.v }}\n\tEOF": "inside a heredoc",
    "true # {{ vars.v }}": "inside a shell comment",
    "echo $(( {{ vars.v }} + 1 ))": "in arithmetic",
    "(( x = {{ vars.v }} ))": "in arithmetic",
    "let x={{ vars.v }}": "in arithmetic",
    "[[ 1 -eq {{ vars.v }} ]]": "in arithmetic",
    "echo \\{{ vars.v }}": "right after a backslash",
    'echo "\\{{ vars.v }}"': "right after a backslash",
    "echo ${{ vars.v }}": "right after $",
    'echo "${{ vars.v }}"': "right after $",
    "echo $'a\\'' {{ vars.v }}": "after a $'...' string with an escaped quote",
    "echo `echo 'a'` {{ vars.v }}": "after a backquoted command",
}


@pytest.mark.parametrize("template", list(REFUSED))
def test_unsafe_places_are_refused_at_validation_and_at_render(template: str) -> None:
    reason = REFUSED[template]
    with pytest.raises(
        TemplateError, match=r"\{\{ vars\.v \}\} \(line \d+, column \d+ of the command\) is "
    ) as info:
        template_references(template)
    assert reason in str(info.value)
    with pytest.raises(TemplateError, match="value 1 of the command") as info:
        render(template, ctx("x"))
    assert reason in str(info.value)


def test_safe_neighbours_of_refused_places_are_accepted() -> None:
    for template in (
        "[[ -f {{ vars.v }} ]] && echo yes",
        "echo $(echo {{ vars.v }}) '$(' \"{{ vars.v }}\"",
        "echo `date` {{ vars.v }}",
        "echo $'\\n' {{ vars.v }}",
        "cat <<EOF\nplain\nEOF\necho '{{ vars.v }}'",
        "echo ${HOME:-/root} {{ vars.v }} # a comment, it's fine",
        "echo a#b {{ vars.v }}",
        "echo {{ vars.v | raw }}",
    ):
        template_references(template)
        render(template, ctx("x"))


def test_validation_position_names_the_line_of_a_multiline_command() -> None:
    text = "name: q\ntasks:\n  - id: a\n    run: |\n      echo ok\n      echo `{{ vars.v }}`\n"
    with pytest.raises(WorkflowError) as info:
        load_yaml(text)
    [problem] = info.value.problems
    assert problem.location == "<string>:4:5"
    assert "{{ vars.v }} (line 2, column 7 of the command) is inside backquotes" in problem.message


def test_blocks_whose_output_cannot_be_placed_are_refused() -> None:
    for template in (
        "{% filter upper %}{{ vars.v }}{% endfilter %}",
        "{% macro m() %}{{ vars.v }}{% endmacro %}{{ m() }}",
        "{% set s %}{{ vars.v }}{% endset %}{{ s }}",
    ):
        with pytest.raises(TemplateError, match="blocks are not supported in commands"):
            template_references(template)
    with pytest.raises(TemplateError, match="NUL"):
        render("{% set s %}{{ vars.v }}{% endset %}echo {{ s }}", ctx("x"))


def test_nul_in_values_or_templates_is_an_error() -> None:
    with pytest.raises(TemplateError, match="NUL"):
        render("echo {{ vars.v }}", ctx("a\0b"))
    with pytest.raises(TemplateError, match="NUL"):
        render("echo {{ vars.v | raw }}", ctx("\x000\x00"))
    with pytest.raises(TemplateError, match="NUL"):
        template_references("echo \0 {{ vars.v }}")


def _run(shell: str, command: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([shell, "-c", command], cwd=cwd, capture_output=True, timeout=20, check=False)


PAYLOADS = [
    "; touch m1",
    "$(touch m2)",
    "`touch m3`",
    "\ntouch m4\n",
    "'; touch m5; '",
    '"; touch m6; "',
    "\\",
    "\\'; touch m7; #",
    '\\"; touch m8; #',
    "$HOME",
    "${HOME}",
    "$(touch m9)'$(touch m10)'\"$(touch m11)\"",
    "a'b\"c\\d$e`f\ng",
    "",
    "*",
    "-n",
]
TEMPLATES = [
    "printf '%s|' {{ vars.v }}",
    "printf '%s|' '{{ vars.v }}'",
    "printf '%s|' \"{{ vars.v }}\"",
    "printf '%s|' \"<{{ vars.v }}>\" '<{{ vars.v }}>' =={{ vars.v }}==",
    "x=$(printf '%s' {{ vars.v }}); printf '%s|' \"$x\"",
    "printf '%s|' $(printf '%s' '{{ vars.v }}' | od -An -c | tr -d ' \\n' >/dev/null; echo ok)",
    "{% if vars.q %}printf '%s|' '{% else %}printf '%s|' {% endif %}{{ vars.v }}{% if vars.q %}'{% endif %}",
    "printf '%s|' {{ vars.o | raw }}{{ vars.v }}{{ vars.o | raw }}",
]


def _expected(template: str, value: str, q: bool, o: str) -> str:
    if "<{{" in template:
        return f"<{value}>|<{value}>|=={value}==|"
    if "od -An" in template:
        return "ok|"
    if template.startswith("x=$("):  # command substitution drops trailing newlines
        return f"{value.rstrip(chr(10))}|"
    return f"{value}|"


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("payload", PAYLOADS)
def test_payloads_print_literally_on_real_shells(
    shell: str, template: str, payload: str, tmp_path: Path
) -> None:
    for q, o in ((True, "'"), (False, '"')):
        command = render(template, ctx(payload, q=q, o=o)).command
        proc = _run(shell, command, tmp_path)
        assert proc.returncode == 0, (command, proc.stderr)
        assert proc.stdout.decode() == _expected(template, payload, q, o), command
    assert list(tmp_path.iterdir()) == [], "a payload ran"


VALUES = st.text(alphabet=string.printable + "é", max_size=30)


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(value=VALUES)
def test_any_value_prints_literally_in_every_context(value: str, tmp_path: Path) -> None:
    value = value.replace("\r", "")  # printf reads \r fine; kept out so output compares as text
    command = "; ".join(
        [
            "printf '%s\\0' {{ vars.v }}",
            "printf '%s\\0' '{{ vars.v }}'",
            "printf '%s\\0' \"{{ vars.v }}\"",
            "printf '%s\\0' \"a{{ vars.v }}\"'b{{ vars.v }}'c{{ vars.v }}",
            "x=$(printf '%s' '{{ vars.v }}'); printf '%s\\0' \"$x\"",
            "printf '%s\\0' $(printf x {{ vars.v }} >/dev/null; echo ok)",
        ]
    )
    rendered = render(command, ctx(value)).command
    want = [value, value, value, f"a{value}b{value}c{value}", value.rstrip("\n"), "ok"]
    for shell in SHELLS:
        proc = _run(shell, rendered, tmp_path)
        assert proc.returncode == 0, (rendered, proc.stderr)
        assert proc.stdout.decode().split("\0")[:-1] == want, rendered
    assert not any(tmp_path.iterdir())


def test_quote_filter_adds_a_layer_for_code_another_shell_runs(tmp_path: Path) -> None:
    value = "$(touch inner)'; touch inner2; '"
    command = render("sh -c 'printf %s {{ vars.v | quote }}'", ctx(value)).command
    proc = _run("/usr/bin/dash", command, tmp_path)
    assert proc.stdout.decode() == value
    assert not any(tmp_path.iterdir())


def test_word_edges_numbers_before_redirects_and_commas(tmp_path: Path) -> None:
    assert render("echo {{ vars.v }}>f", ctx("2")).command == "echo '2'>f"  # not a descriptor
    assert render("echo {{ vars.v }} >f", ctx("2")).command == "echo 2 >f"
    assert render("echo {pre{{ vars.v }}post}", ctx("a,b")).command == "echo {pre'a,b'post}"
    for shell in SHELLS:
        proc = _run(shell, render("echo {{ vars.v }}>f; cat f", ctx("2")).command, tmp_path)
        assert proc.stdout == b"2\n"
        proc = _run(shell, render("echo {pre{{ vars.v }}post}", ctx("a,b")).command, tmp_path)
        assert proc.stdout == b"{prea,bpost}\n"


def test_here_strings_and_quoted_heredoc_delimiters() -> None:
    assert render("cat <<< {{ vars.v }}", ctx("x y")).command == "cat <<< 'x y'"
    with pytest.raises(TemplateError, match="inside a heredoc"):
        template_references("cat <<'E F'\nE\n{{ vars.v }}\nE F\necho done")
    template_references("cat <<'E F'\nbody\nE F\necho {{ vars.v }}")
    for template in ("[[ -v {{ vars.v }} ]]", "[[ -R {{ vars.v }} ]]"):
        with pytest.raises(TemplateError, match="in arithmetic"):
            template_references(template)


def test_a_marker_rewritten_at_render_time_is_an_error() -> None:
    # render() does not validate first: a {% filter %} that rewrites markers is caught at render
    with pytest.raises(TemplateError, match=r"lost or repeated|repeated in the command"):
        render("{% filter replace('1', '0') %}echo {{ vars.v }} {{ vars.v }}{% endfilter %}", ctx("x"))


NESTED_CODE = {
    "sh -c 'echo {{ vars.v }}'": "inside code that sh -c runs",
    'sudo -u pg bash -o pipefail -ec "echo {{ vars.v }}"': "inside code that bash -c runs",
    "find . -exec sh -c 'rm {{ vars.v }}' \\;": "inside code that sh -c runs",
    "eval echo {{ vars.v }}": "inside code that eval runs",
    "su - pg -c 'psql {{ vars.v }}'": "inside code that su -c runs",
    "ssh -i key -p 22 host ls {{ vars.v }}": "inside code that ssh (the remote shell) runs",
    "watch -n 5 ls {{ vars.v }}": "inside code that watch runs",
    "python3 -c 'print(\"{{ vars.v }}\")'": "inside python3 -c code",
    "perl -e 'print \"{{ vars.v | quote }}\"'": "inside perl -e code",
}


@pytest.mark.parametrize("template", list(NESTED_CODE))
def test_values_in_code_another_interpreter_runs_are_refused(template: str) -> None:
    with pytest.raises(TemplateError) as info:
        template_references(template)
    assert NESTED_CODE[template] in str(info.value)
    with pytest.raises(TemplateError, match="value 1 of the command"):
        render(template, ctx("x"))


def test_arguments_of_a_nested_shell_and_quoted_values_are_accepted(tmp_path: Path) -> None:
    value = "$(touch m1)'; touch m2; '\"`touch m3`\"\n;touch m4"
    for template in (
        "sh -c 'printf %s \"$1\"' sh {{ vars.v }}",  # positional arguments are data
        "sh -c 'printf %s {{ vars.v | quote }}'",
        'bash -c "printf %s {{ vars.v | quote }}"',
        "python3 -c 'import sys; sys.stdout.write(sys.argv[1])' {{ vars.v }}",
        "sh -c 'true' > /dev/null; printf %s {{ vars.v }}",
        "ssh -o BatchMode=yes -i {{ vars.v }} -V 2>/dev/null; printf %s {{ vars.v }}",
    ):
        command = render(template, ctx(value)).command
        for shell in SHELLS:
            proc = _run(shell, command, tmp_path)
            assert proc.stdout.decode() == value, (template, command, proc.stderr)
    assert not any(tmp_path.iterdir())


def test_sysflow_validate_names_file_line_and_what_to_write(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sysflow.cli import app

    workflow = tmp_path / "wf.yaml"
    workflow.write_text(
        'name: q\ntasks:\n  - id: a\n    run: echo "$(cat {{ vars.f }})"\n'
        '  - id: b\n    run: |\n      ok=1\n      sh -c "echo {{ host.name }}"\n'
        "  - id: c\n    run: echo '{{ host.name }}' \"{{ host.name }}\" {{ host.name }}\n"
    )
    inventory = Path(__file__).parents[2] / "examples" / "inventory.ini"
    result = CliRunner().invoke(app, ["validate", str(workflow), "-i", str(inventory)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert lines[0].startswith(
        f"{workflow}:4:5: tasks[0].run: {{{{ vars.f }}}} (line 1, column 13 of the command)"
    )
    assert "inside $( ) that is inside double quotes" in lines[0]
    assert lines[1].startswith(f"{workflow}:6:5: tasks[1].run: {{{{ host.name }}}} (line 2, column 13")
    assert "write {{ ... | quote }}" in lines[1]
    assert lines[2] == f"{workflow}: invalid, 2 problem(s)"  # task c, quoted both ways, is fine

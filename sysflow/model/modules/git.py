"""``git``: a checkout of ``repo`` at ``version`` (branch, tag or commit) in ``dest`` on the host.

The wanted commit is read from the repository (``git ls-remote``: check mode changes nothing, not
even the checkout's refs). A missing ``dest`` is cloned; an existing checkout is fetched and moved to
the commit (a branch is checked out as that branch, a tag or commit detached), its ``origin`` set to
``repo``. Local changes to tracked files stop the module unless ``force: true`` discards them.

Run prints ``DEST: abc1234 -> def5678 (VERSION)`` and the commits between. The commit it moved
from is kept in ``DEST/.git/sysflow-prev`` (``DEST/.git/sysflow-new`` marks a clone) for the
task's rollback, which checks that commit (and branch) out again or removes the clone; a run that
finds nothing to change removes those files, so a rollback never undoes an earlier run.
"""

from __future__ import annotations

from pydantic import Field

from sysflow.model.base import FrozenModel
from sysflow.model.modules.base import HostPath, ModuleActions, assign, script

__all__ = ["GitModule"]

PREV_FILE = ".git/sysflow-prev"  # "COMMIT BRANCH" (BRANCH empty: detached) before the last change
NEW_FILE = ".git/sysflow-new"  # the last change cloned DEST

_PRELUDE = r"""export GIT_TERMINAL_PROMPT=0 GIT_SSH_COMMAND="${GIT_SSH_COMMAND:-ssh -o BatchMode=yes}"
command -v git >/dev/null 2>&1 || { echo "git: git is not installed on this host" >&2; exit 1; }
g() { git -C "$dest" "$@"; }
log=$(mktemp "${TMPDIR:-/tmp}/sysflow-git.XXXXXX") || exit 1
trap 'rm -f -- "$log"' EXIT
fail() { cat "$log" >&2; echo "git: $*" >&2; exit 1; }
short() { if [ -n "$1" ]; then printf '%.7s' "$1"; else printf '(none)'; fi; }
"""

# want: the commit (kind: branch, tag, HEAD or commit); now: the checkout's (empty: none yet)
_DETECT = r"""git ls-remote -- "$repo" > "$log.refs" 2> "$log" || { rm -f -- "$log.refs"; fail "cannot read $repo"; }
want=$(V="$version" awk '
  BEGIN { v = ENVIRON["V"] }
  $2 == "refs/tags/" v "^{}" { t = $1 } $2 == "refs/tags/" v && t == "" { t = $1 }
  $2 == "refs/heads/" v { b = $1 } $2 == v { h = $1 }
  END { if (b != "") print b, "branch"; else if (t != "") print t, "tag"; else if (h != "") print h, "HEAD" }
' "$log.refs")
rm -f -- "$log.refs"
kind=${want#* } want=${want%% *}
if [ -z "$want" ]; then
  case $version in  # a commit: 7 to 40 hex digits
    *[!0-9a-f]* | "" | ? | ?? | ??? | ???? | ????? | ??????)
      echo "git: $repo has no branch or tag $version" >&2; exit 1 ;;
  esac
  want=$version kind=commit
fi
now= url=
if [ -e "$dest" ] && [ -n "$(ls -A -- "$dest" 2>/dev/null)" ]; then
  [ -d "$dest/.git" ] || { echo "git: $dest exists and is not a git checkout" >&2; exit 1; }
  now=$(g rev-parse -q --verify 'HEAD^{commit}')
  url=$(g remote get-url origin 2>/dev/null)
fi
case $now in "$want"*) ;; *) c=1 ;; esac
[ -z "$now" ] || [ "$url" = "$repo" ] || c=1
if [ "$c" = 1 ] && [ -n "$now" ] && [ "$force" = 0 ] && [ -n "$(g status --porcelain --untracked-files=no)" ]; then
  echo "git: $dest has local changes (force: true discards them)" >&2; exit 1
fi
if [ "$check" = 1 ] && [ "$c" = 1 ]; then echo "$dest: $(short "$now") -> $(short "$want") ($version)"; fi
"""

_APPLY = rf"""if [ -z "$now" ]; then
  git clone --quiet --no-checkout -- "$repo" "$dest" 2> "$log" || fail "cannot clone $repo into $dest"
  : > "$dest/{NEW_FILE}"; rm -f -- "$dest/{PREV_FILE}"
else
  if [ "$url" != "$repo" ]; then
    g remote set-url origin "$repo" 2> "$log" || g remote add origin "$repo" 2> "$log" || fail "cannot set origin"
    echo "origin: ${{url:-(none)}} -> $repo"
  fi
  g fetch --quiet --tags --force origin 2> "$log" || fail "cannot fetch $repo into $dest"
  printf '%s %s\n' "$now" "$(g symbolic-ref -q --short HEAD)" > "$dest/{PREV_FILE}" || exit 1
  rm -f -- "$dest/{NEW_FILE}"
fi
commit=$(g rev-parse -q --verify "$want^{{commit}}") || fail "$repo has no commit $want"
f=; [ "$force" = 1 ] && f=-f
if [ "$kind" = branch ]; then
  g checkout --quiet $f -B "$version" "$commit" 2> "$log" || fail "cannot check $version out in $dest"
  g branch --quiet --set-upstream-to="origin/$version" 2>/dev/null
else
  g checkout --quiet $f --detach "$commit" 2> "$log" || fail "cannot check $commit out in $dest"
fi
echo "$dest: $(short "$now") -> $(short "$commit") ($version)"
[ -z "$now" ] || g log --oneline --no-decorate -20 "$now..$commit"
"""

_ROLLBACK = rf"""if [ -f "$dest/{NEW_FILE}" ]; then rm -rf -- "$dest" && echo "removed $dest"
elif [ -f "$dest/{PREV_FILE}" ]; then
  read -r prev branch < "$dest/{PREV_FILE}" || exit 1
  if [ -n "$branch" ]; then git -C "$dest" checkout --quiet -B "$branch" "$prev" || exit 1
  else git -C "$dest" checkout --quiet --detach "$prev" || exit 1; fi
  rm -f -- "$dest/{PREV_FILE}"
  echo "$dest: back to $(printf '%.7s' "$prev")${{branch:+ ($branch)}}"
fi
"""


class GitModule(FrozenModel):
    """Ensure ``dest`` is a checkout of ``repo`` at ``version``."""

    repo: str = Field(min_length=1, description="URL (or path) of the repository, as git clone takes it.")
    dest: HostPath = Field(description="Absolute path of the checkout on the host.")
    version: str = Field(
        "HEAD",
        pattern=r"^([A-Za-z0-9_][A-Za-z0-9._/+-]*|\{\{.*\}\})$",
        description="Branch, tag or commit (7 to 40 hex digits); HEAD: the repository's default branch.",
    )
    force: bool = Field(False, description="Discard local changes to tracked files in dest.")

    def actions(self) -> ModuleActions:
        return ModuleActions(
            run=self._script(check_only=False),
            check=self._script(check_only=True),
            rollback=assign(dest=self.dest) + _ROLLBACK,
        )

    def _script(self, *, check_only: bool) -> str:
        values = assign(repo=self.repo, dest=self.dest, version=self.version)
        prelude = values + assign(force=int(self.force), check=int(check_only)) + _PRELUDE
        on_ok = f'rm -f -- "$dest/{PREV_FILE}" "$dest/{NEW_FILE}"\n'
        return script(prelude, _DETECT, _APPLY, check_only=check_only, on_ok=on_ok)

"""`winspect completion`: shell completion scripts for bash, zsh, fish and PowerShell.

bash, zsh and fish use click's own completion; PowerShell gets a small
generator of ours (older click releases have none): a native argument
completer that calls winspect back with COMP_WORDS / COMP_CWORD, as the
bash script does.
"""

from __future__ import annotations

import os

import click
from click.shell_completion import CompletionItem, ShellComplete, add_completion_class, split_arg_string

from winspect.cli.options import command

COMPLETE_VAR = "_WINSPECT_COMPLETE"
SHELLS = ("bash", "zsh", "fish", "powershell")

_POWERSHELL_SOURCE = r"""
# winspect completion for PowerShell. Load it with:
#   winspect completion powershell | Out-String | Invoke-Expression
Register-ArgumentCompleter -Native -CommandName %(prog_name)s, %(prog_name)s.exe -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)
    $words = $commandAst.ToString().Substring(0, [Math]::Min($cursorPosition - $commandAst.Extent.StartOffset,
        $commandAst.ToString().Length))
    $cword = ($words -split '\s+' | Where-Object { $_ -ne '' }).Count
    if ($wordToComplete -ne '') { $cword -= 1 }
    $env:%(complete_var)s = 'powershell_complete'
    $env:COMP_WORDS = $words
    $env:COMP_CWORD = $cword
    try {
        $lines = @(& %(prog_name)s 2>$null)
    } finally {
        Remove-Item Env:%(complete_var)s, Env:COMP_WORDS, Env:COMP_CWORD -ErrorAction SilentlyContinue
    }
    foreach ($line in $lines) {
        $type, $value, $help = $line -split "`t", 3
        if ($type -eq 'file' -or $type -eq 'dir') {
            Get-ChildItem -Path "$value*" -Directory:($type -eq 'dir') -ErrorAction SilentlyContinue |
                ForEach-Object { [System.Management.Automation.CompletionResult]::new($_.Name) }
        } elseif ($value) {
            if (-not $help) { $help = $value }
            [System.Management.Automation.CompletionResult]::new($value, $value, 'ParameterValue', $help)
        }
    }
}
"""


class PowerShellComplete(ShellComplete):
    """Completion for PowerShell (5.1 and 7+): one `type<TAB>value<TAB>help` line per item."""

    name = "powershell"
    source_template = _POWERSHELL_SOURCE

    def get_completion_args(self) -> tuple[list[str], str]:
        cwords = split_arg_string(os.environ.get("COMP_WORDS", ""))
        cword = int(os.environ.get("COMP_CWORD", "0") or 0)
        args = cwords[1:cword]
        incomplete = cwords[cword] if cword < len(cwords) else ""
        return args, incomplete

    def format_completion(self, item: CompletionItem) -> str:
        help_ = " ".join((item.help or "").split())
        return f"{item.type}\t{item.value}\t{help_}"


def register() -> None:
    add_completion_class(PowerShellComplete, "powershell")


EXAMPLES = """
source <(winspect completion bash)                       # bash, this shell
winspect completion zsh > "${fpath[1]}/_winspect"         # zsh
winspect completion fish > ~/.config/fish/completions/winspect.fish
winspect completion powershell | Out-String | Invoke-Expression   # PowerShell
"""


@command("completion", examples=EXAMPLES)
@click.argument("shell", metavar="bash|zsh|fish|powershell", type=click.Choice(SHELLS, case_sensitive=False))
def completion(shell: str) -> None:
    """Print the shell completion script for bash, zsh, fish or PowerShell."""
    from click.shell_completion import get_completion_class

    register()
    cls = get_completion_class(shell.lower())
    assert cls is not None
    root = click.get_current_context().find_root().command  # the `winspect` group
    click.echo(cls(root, {}, "winspect", COMPLETE_VAR).source())


def kubectl_complete(cli: click.Command) -> None:
    """`kubectl_complete-winspect`: completion of `kubectl winspect ...` for kubectl (1.26+), which
    runs it with the words after `winspect` and the one being typed (cobra's `__complete` first,
    from some callers), and reads one candidate a line (a tab, then its help) and a last line `:4`
    (no file names)."""
    import sys

    words = sys.argv[1:]
    if words and words[0] in ("__complete", "__completeNoDesc"):
        words = words[1:]
    incomplete = words[-1] if words else ""
    try:
        items = ShellComplete(cli, {}, "kubectl winspect", COMPLETE_VAR).get_completions(
            words[:-1], incomplete
        )
    except Exception:  # completion offers nothing rather than an error
        items = []
    for item in items:
        if item.type == "plain":
            click.echo(f"{item.value}\t{item.help}" if item.help else item.value)
    click.echo(":4")

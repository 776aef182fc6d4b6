"""``kiln completion bash|zsh|fish``: shell completion scripts made from the parser itself.

The scripts carry the command tree (sub-commands and their options) as data, so they can
never drift from what ``kiln`` accepts: a test compares them with the parser. Paths are
completed by the shell's own file completion.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Iterator

__all__ = ["SHELLS", "command_tree", "completion_script"]

SHELLS = ("bash", "zsh", "fish")


def command_tree(parser: argparse.ArgumentParser) -> dict[str, list[str]]:
    """``"kiln run"`` -> the words that may follow it (sub-commands, then options)."""
    tree: dict[str, list[str]] = {}
    for path, sub in _walk(parser, ("kiln",)):
        words: list[str] = []
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                words.extend(action.choices)
            else:
                words.extend(s for s in action.option_strings if s.startswith("--"))
        tree[" ".join(path)] = words
    return tree


def _walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, (*path, name))


def completion_script(shell: str, parser: argparse.ArgumentParser) -> str:
    """The completion script for ``shell`` (one of :data:`SHELLS`)."""
    tree = command_tree(parser)
    if shell == "bash":
        return _bash(tree)
    if shell == "zsh":
        return "autoload -U +X bashcompinit && bashcompinit\n" + _bash(tree)
    if shell == "fish":
        return _fish(tree)
    raise ValueError(f"no completion for shell {shell!r}")


def _bash(tree: dict[str, list[str]]) -> str:
    cases = "\n".join(
        f"        {shlex.quote(path)}) words={shlex.quote(' '.join(words))} ;;"
        for path, words in sorted(tree.items())
    )
    return f"""# kiln completion for bash; load with: source <(kiln completion bash)
_kiln_complete() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" path="kiln" word words i
    # the command path: every earlier word that names a sub-command of the path so far
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${{COMP_WORDS[i]}}"
        case "$word" in -*) continue ;; esac
        _kiln_words "$path"
        case " $words " in *" $word "*) path="$path $word" ;; esac
    done
    _kiln_words "$path"
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
    if [[ "$cur" != -* ]]; then COMPREPLY+=($(compgen -f -- "$cur")); fi
}}
_kiln_words() {{
    words=""
    case "$1" in
{cases}
    esac
}}
complete -o filenames -F _kiln_complete kiln
"""


def _fish(tree: dict[str, list[str]]) -> str:
    lines = ["# kiln completion for fish; load with: kiln completion fish | source"]
    lines.append("complete -c kiln -f")
    for path, words in sorted(tree.items()):
        parts = path.split()[1:]
        if parts:
            condition = " and ".join(f"__fish_seen_subcommand_from {p}" for p in parts)
        else:
            condition = "__fish_use_subcommand"
        subs = [w for w in words if not w.startswith("-")]
        options = [w.removeprefix("--") for w in words if w.startswith("--")]
        when = f"complete -c kiln -n {shlex.quote(condition)}"
        if subs:
            lines.append(f"{when} -a {shlex.quote(' '.join(subs))}")
        lines.extend(f"{when} -l {shlex.quote(option)}" for option in options)
        if parts and not subs:
            lines.append(f"{when} -F")
    return "\n".join(lines) + "\n"

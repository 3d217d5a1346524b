"""How the two Windows parsers read a command line, for tests of what ndex prints for cmd.exe:
cmd.exe first (`cmd_exe`), then the program's C runtime (`windows_split`)."""
from __future__ import annotations


def windows_split(line: str) -> list[str]:
    """The MS C runtime's rules for splitting a command line (the inverse of subprocess.list2cmdline)."""
    out, word, quoted, slashes, has_word = [], [], False, 0, False
    for ch in line + " ":
        if ch == "\\":
            slashes += 1
            continue
        if ch == '"':
            word.append("\\" * (slashes // 2))
            if slashes % 2:
                word.append('"')
            else:
                quoted = not quoted
            slashes, has_word = 0, True
            continue
        word.append("\\" * slashes)
        slashes = 0
        if ch in " \t" and not quoted:
            if has_word or any(word):
                out.append("".join(word))
            word, has_word = [], False
        else:
            word.append(ch)
            has_word = True
    return out


def cmd_exe(line: str) -> str:
    """What cmd.exe hands the program: outside double quotes `^` escapes the next character and an
    unescaped `<`, `>`, `|` or `&` is a redirection or a chain (which fails the test); inside them all
    is literal. (`%` expansion is not modelled: cmd_quote refuses it.)"""
    out, quoted, escaped = [], False, False
    for ch in line:
        if escaped:
            out.append(ch)
            escaped = False
        elif ch == '"':
            quoted = not quoted
            out.append(ch)
        elif quoted:
            out.append(ch)
        elif ch == "^":
            escaped = True
        else:
            assert ch not in "<>|&", f"cmd.exe would act on {ch!r} in {line!r}"
            out.append(ch)
    return "".join(out)


def windows_argv(line: str) -> list[str]:
    return windows_split(cmd_exe(line))

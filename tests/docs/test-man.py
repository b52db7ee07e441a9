#!/usr/bin/python3
"""tests/docs/test-man.py BERTH MAN_PAGE: berth(1) describes what berth accepts: every command
of `berth --help`, with each of its options, is an entry of its COMMANDS section, and every global
option one of GLOBAL OPTIONS.
tests/docs/test-man.py --options PROGRAM MAN_PAGE: every option of `PROGRAM --help` is an entry of
the page's OPTIONS section (berthd(8), berth-shim(8)). The page is rendered with man(1) (man-db), which also has to find no
problem in it. (berthd.conf(5)'s keys and defaults: tests/unit/test_berthd_config.c.)
"""
import os
import re
import subprocess
import sys


def render(page):
    env = dict(os.environ, MANWIDTH="200", MAN_KEEP_FORMATTING="")
    env.pop("MANPAGER", None)
    result = subprocess.run(["man", "--warnings", "--nh", "--nj", "-P", "cat", "-l", page], env=env,
                            capture_output=True, text=True, check=False)
    if result.returncode != 0 or result.stderr.strip():
        sys.exit(f"FAIL: man -l {page}: {result.stderr.strip() or result.returncode}")
    return re.sub(".\b", "", result.stdout)


def section(text, name):
    """The lines of a top-level section (its heading is NAME, unindented)."""
    out, inside = [], False
    for line in text.splitlines():
        if line and not line[0].isspace():
            inside = line.strip() == name
            continue
        if inside:
            out.append(line)
    if not out:
        sys.exit(f"FAIL: no {name} section")
    return out


def entries(lines):
    """Tagged paragraphs (.TP): {tag line: the tag and its text}, in order. A tag sits at the
    section's indent (7 columns); its text is indented further."""
    found, tag = {}, None
    for line in lines:
        indent = len(line) - len(line.lstrip())
        if line.strip() and indent == 7:
            tag = line.strip()
            found[tag] = tag
        elif line.strip() and indent < 7:
            tag = None
        elif tag and line.strip():
            found[tag] += " " + line.strip()
    return found


def options_in(text):
    return set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", text))


def check_berth(berth, page):
    helptext = subprocess.run([berth, "--help"], capture_output=True, text=True,
                              check=True).stdout
    usage, _, commands = helptext.partition("\ncommands:\n")
    text = render(page)
    problems = []
    documented = entries(section(text, "COMMANDS"))
    for line in commands.splitlines():
        if not line.strip():
            continue
        words = re.match(r"\s*((?:[a-z][a-z-]* ?)+)", line).group(1).split()
        name = " ".join(words)
        entry = [body for tag, body in documented.items() if tag.split()[:len(words)] == words]
        if not entry:
            problems.append(f"berth {name}: no entry in COMMANDS")
            continue
        for opt in sorted(options_in(line) - options_in(entry[0])):
            problems.append(f"berth {name}: {opt} is not in its COMMANDS entry")
    globals_text = " ".join(entries(section(text, "GLOBAL OPTIONS")))
    for opt in sorted(options_in(usage) - options_in(globals_text)):
        problems.append(f"berth {opt}: not an entry of GLOBAL OPTIONS")
    return problems, f"{len(commands.split(chr(10))) - 1} commands"


def check_options(program, page):
    result = subprocess.run([program, "--help"], capture_output=True, text=True, check=False)
    helptext = result.stdout + result.stderr
    tags = " ".join(entries(section(render(page), "OPTIONS")))
    documented = {opt for opt in options_in(tags)}
    name = os.path.basename(program)
    problems = [f"{name} {opt}: not an entry of OPTIONS"
                for opt in sorted(options_in(helptext) - documented)]
    return problems, f"{len(options_in(helptext))} options of {name}"


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--options":
        problems, what = check_options(*sys.argv[2:])
    elif len(sys.argv) == 3:
        problems, what = check_berth(*sys.argv[1:])
    else:
        sys.exit(__doc__)
    for p in problems:
        print(f"FAIL: {p}")
    if problems:
        sys.exit(1)
    print(f"ok: {what} documented")


if __name__ == "__main__":
    main()

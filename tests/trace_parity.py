#!/usr/bin/env python3
"""Runs the asyncio programs embedded in aio's tests under CPython and checks that
CPython prints the lines the C++ trace tests expect.

The test files (tests/test_*.cpp) carry, as `//` comments next to a trace test, the
asyncio program the test mirrors. This script reads them the way they are written:

* A program is a run of `//` comment lines that starts at `import asyncio` (or
  `import asyncio, gc`, ...) and takes each paragraph (empty comment lines separate
  them) while the program still compiles with it; prose after it does not compile.
  Prose before it may state a version requirement ("Python 3.13:"), which is honoured.
* The first comment block of a file may hold shared helpers starting at `import asyncio`
  (tests/test_task_group.cpp); a later comment block of code without its own import is
  then a fragment, run as helpers + fragment + `asyncio.run(main())` + `print(<the
  helpers' list>)`. Without shared helpers such a block is a sketch (`-> a / b`
  results, undefined helpers) and is skipped.
* `async def name(...): ...as above` stands for the definition of `name` in an earlier
  program of the same file.
* A program belongs to the next TEST_CASE (or, inside a test body, the enclosing one).
* The expected output is, in this order of preference:
  1. comments: `print(...)   # <line>` on a print line, `# <line>` lines after the last
     line of code, or a prose line `prints <line>` after the program: the lines CPython
     prints; `statement  # SomeError: message`: the program ends with that exception
     (the last line of its traceback);
  2. the test's `REQUIRE(x == lines{"...", ...})` (or `std::vector<std::string>{...}`),
     or `REQUIRE(x == name)` with `lines name{...}` (or `lines name = other;` and
     `name.insert(name.end(), ...)`) in the body: the lines the program logs. A program
     that prints one list (`print(log)`) is compared item by item, one that prints lines
     line by line.

A program that uses `asyncio.X` missing from the CPython at hand, or that fails with an
AttributeError about asyncio, is skipped as needing a newer CPython. KNOWN below lists
the tests whose expected lines are not, or not always, what this CPython prints, and why.

Exit status: 0 when every program that was not skipped printed the expected lines (known
mismatches included, unless --strict), 1 otherwise (with a diff for each), 2 on a usage
error.
"""

import argparse
import ast
import difflib
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

# Tests whose expected lines are not, or not always, what CPython 3.11 prints; keyed by
# (file, TEST_CASE name). Each entry has a reason, printed with it, and one of:
#   min_python  (3, 13): the expected lines are a newer CPython's; skipped below it
#   attempts    N: CPython's order varies (sets of tasks); up to N runs, each with the
#               memory layout shifted a little, must give one with the expected order
#   translate   {line the test expects: line CPython prints}: lines the C++ test spells
#               aio's way; every line is still checked
#   mismatch    True: the test checks more than its program prints; the program is run
#               and the difference shown, but it fails the run only with --strict
# Delete an entry once the test file says what CPython prints.
SET_ORDER = "CPython cancels the tasks in the order of a set, which varies from run to run"
KNOWN = {
    # version-dependent: the expected lines follow CPython 3.13
    ("test_task_group.cpp", "a failure while the group waits in the exit cancels the others and leaves "
                            "the parent not cancelling"): dict(
        min_python=(3, 13), reason="the test's comment: CPython 3.12 (and 3.11) prints 'cancelling 1', "
                                   "aio follows 3.13's 'cancelling 0'"),
    ("test_task_group.cpp", "an outside cancellation during a failed group's shutdown yields to the "
                            "exception_group and is delivered at the next suspension"): dict(
        min_python=(3, 13), reason="the test's comment: CPython 3.12 (and 3.11) loses the cancellation "
                                   "('not cancelled'); aio follows 3.13's last two lines"),
    # order of a set
    ("test_task_group.cpp", "the first failure in a task group cancels its siblings and the body, and "
                            "the group throws an exception_group holding it"): dict(
        attempts=40, reason="asyncio.TaskGroup: " + SET_ORDER,
        translate={"caught unhandled errors in a TaskGroup (1 sub-exception) [b]":
                   "caught unhandled errors in a TaskGroup (1 sub-exception) ['b']"}),
    ("test_task_group.cpp", "cancelling the parent from outside while the body runs cancels the "
                            "children and run() throws cancelled_error"): dict(
        attempts=40, reason="asyncio.TaskGroup: " + SET_ORDER),
    ("test_run.cpp", "run cancels pending tasks in creation order and lets their cleanup await"): dict(
        attempts=40, reason="asyncio.run's shutdown (asyncio.all_tasks()): " + SET_ORDER),
    # the C++ test spells a line differently from CPython
    ("test_queue.cpp", "join returns once every item put has been marked done as in asyncio"): dict(
        translate={"invalid_state_error aio queue: task_done() called too many times":
                   "ValueError task_done() called too many times"},
        reason="aio throws aio::invalid_state_error where asyncio raises ValueError"),
    ("test_task_handle.cpp", "a task cancelled while running that returns without suspending ends "
                             "cancelled, as in asyncio"): dict(
        translate={"cancelled() = True": "cancelled() = 1"},
        reason="the program prints int(h.cancelled()), the test logs True"),
    ("test_run.cpp", "run cancels pending tasks before rethrowing main's exception"): dict(
        translate={"run raised main": "run raised 'main'"},
        reason="str() of a KeyError quotes the key"),
    ("test_task_group.cpp", "an exception_group holds every child's error in the order they happened, "
                            "then the body's"): dict(
        translate={"caught unhandled errors in a TaskGroup (4 sub-exceptions) [a, b, c cleanup, body]":
                   "caught unhandled errors in a TaskGroup (4 sub-exceptions) ['a', 'b', 'c cleanup', 'body']"},
        reason="the program prints a list of str, whose items Python quotes"),
    ("test_task_group.cpp", "a failure in a nested group reaches the outer group as an exception_group "
                            "inside its exception_group"): dict(
        translate={"caught unhandled errors in a TaskGroup (1 sub-exception) "
                   "[unhandled errors in a TaskGroup (1 sub-exception)]":
                   "caught unhandled errors in a TaskGroup (1 sub-exception) "
                   "['unhandled errors in a TaskGroup (1 sub-exception)']",
                   "inner unhandled errors in a TaskGroup (1 sub-exception) [f]":
                   "inner unhandled errors in a TaskGroup (1 sub-exception) ['f']"},
        reason="the program prints a list of str, whose items Python quotes"),
    ("test_task_group.cpp", "a failure in an outer group cancels a nested group's body and children, and "
                            "only the outer group throws"): dict(
        translate={"caught unhandled errors in a TaskGroup (1 sub-exception) [f]":
                   "caught unhandled errors in a TaskGroup (1 sub-exception) ['f']"},
        reason="the program prints a list of str, whose items Python quotes"),
    # the C++ test checks more than its program does
    ("test_event_loop.cpp", "an exception thrown by a callback goes to the exception handler and the loop "
                            "keeps running, as in asyncio"): dict(
        mismatch=True, reason="the test adds a timer that throws ('bad timer', a second 'handler', 'stop') "
                              "and logs 'handler' where the program logs 'handler: <message>'"),
    ("test_gather.cpp", "gather of an empty vector returns an empty vector without suspending"): dict(
        mismatch=True, reason="the test gathers an empty vector of tasks and then one of handles (two "
                              "'after 0'); the program gathers once"),
    ("test_task_group.cpp", "run() returns the body's value, and the children's results are in their "
                            "handles"): dict(
        mismatch=True, reason="the test logs 'value a 42 child-a' (the body's value and the child's name); "
                              "the program logs 'value a'"),
}

DEFAULT_ATTEMPTS = 3  # a mismatch is run again: a few programs race short sleeps
LOOPBACK = {"127.0.0.1", "localhost", "::1", "", "0.0.0.0", "::"}
NETWORK_CALL = re.compile(r"\b(open_connection|start_server|create_connection|create_server|"
                          r"create_datagram_endpoint|sock_connect|getaddrinfo|urlopen|connect)\b")
IMPORT_ASYNCIO = re.compile(r"^(import\s+(\w+\s*,\s*)*asyncio\b|from\s+asyncio\s+import\b)")
CODE_LINE = re.compile(r"^\s*(async\s+def\s|def\s|await\s|async\s+with\s|async\s+for\s|try:|except\b|"
                       r"asyncio\.run\(|print\(|->\s|[\w, ]+\s*=\s*(await\s+)?[\w.]+\()")
PRINTS_NOTE = re.compile(r"^[Pp]rints:?\s+(.+)$")
VERSION_NOTE = re.compile(r"^C?Python\s+(3)\.(\d+)\+?:\s*$")
AS_ABOVE = re.compile(r"^(\s*)(?:async\s+)?def\s+(\w+)\s*\(.*\)\s*:\s*\.\.\.\s*as above\s*$")
EXCEPTION_NOTE = re.compile(r"^(?:\w+\.)*\w+(?:Error|Exception|Interrupt|Exit|ShutDown)(?::\s.*)?$")
CPP_STRING = re.compile(r'"((?:[^"\\\n]|\\.)*)"')


@dataclass
class Program:
    file: Path
    line: int  # 1-based line of the program's first line in the test file
    test: str = "(no test)"
    code: str = ""
    expected: list = None  # the lines, when known
    expected_from: str = ""  # "comment" or "REQUIRE"
    expected_exception: str = ""  # the last line of the traceback, when the program is to fail
    skip: str = ""  # why it cannot be checked
    min_python: tuple = None
    notes: dict = field(default_factory=dict)

    @property
    def where(self):
        return f"{self.file.name}:{self.line}"


# ---- reading the test files ---------------------------------------------------------

def comment_blocks(lines):
    """Yields (index of the first line, indentation, [text]) for each run of `//` lines."""
    i = 0
    while i < len(lines):
        stripped = lines[i].lstrip()
        if not stripped.startswith("//"):
            i += 1
            continue
        start, indentation, text = i, len(lines[i]) - len(stripped), []
        while i < len(lines) and lines[i].lstrip().startswith("//"):
            body = lines[i].lstrip()[2:]
            text.append((body[1:] if body.startswith(" ") else body).rstrip())
            i += 1
        yield start, indentation, text


def paragraphs(text):
    """[(index of the first line, [lines])], split at empty lines."""
    out, current, start = [], [], 0
    for k, t in enumerate(text + [""]):
        if t.strip():
            if not current:
                start = k
            current.append(t)
        elif current:
            out.append((start, current))
            current = []
    return out


def compiles(lines):
    try:
        compile("\n".join(lines) + "\n", "<embedded>", "exec")
        return True
    except (SyntaxError, ValueError):
        return False


def looks_like_prose(paragraph):
    """True for a paragraph that parses as Python only by accident (`prints ['x']` is a
    subscript): nothing in it but expressions that are neither calls nor awaits."""
    try:
        tree = ast.parse("\n".join(paragraph))
    except SyntaxError:
        return False
    return all(isinstance(node, ast.Expr) and not isinstance(node.value, (ast.Call, ast.Await))
               for node in tree.body)


def program_lines(text, first):
    """The program that starts at text[first], and the index in text after it."""
    pars = [(s, p) for s, p in paragraphs(text) if s + len(p) > first]
    if not pars:
        return [], first
    start, par = pars[0]
    code, end = par[first - start:], start + len(par)
    for s, p in pars[1:]:
        if PRINTS_NOTE.match(p[0].strip()) or looks_like_prose(p) or not compiles(code + [""] + p):
            break
        code, end = code + [""] + p, s + len(p)
    return code, end


def definition(code_lines, name):
    """The lines defining function `name` in code_lines (dedented), or None."""
    pattern = re.compile(r"^(\s*)(?:async\s+)?def\s+" + re.escape(name) + r"\s*\(")
    for i, line in enumerate(code_lines):
        m = pattern.match(line)
        if m and not AS_ABOVE.match(line):
            depth = len(m.group(1))
            j = i + 1
            while j < len(code_lines) and len(code_lines[j]) - len(code_lines[j].lstrip()) > depth:
                j += 1
            return [x[depth:] for x in code_lines[i:j]]
    return None


def unescape(s):
    simple = {"n": "\n", "t": "\t", '"': '"', "'": "'", "\\": "\\", "0": "\0", "r": "\r"}
    return re.sub(r"\\(.)", lambda m: simple.get(m.group(1), m.group(0)), s)


def cpp_string_list(text):
    """The strings of a brace list of C++ string literals ("a" "b" concatenate), or None
    when an element is anything else."""
    elements, i = [[]], 0
    while i < len(text):
        c = text[i]
        if c == '"':
            m = CPP_STRING.match(text, i)
            if not m:
                return None
            elements[-1].append(m.group(1))
            i = m.end()
            continue
        if c == ",":
            elements.append([])
        elif not c.isspace():
            return None
        i += 1
    if elements == [[]]:
        return []
    if any(not e for e in elements):
        return None
    return ["".join(unescape(s) for s in e) for e in elements]


def balanced(text, open_index):
    """The text inside the brace at text[open_index] and its match, or None."""
    depth, i, in_string = 0, open_index, False
    while i < len(text):
        c = text[i]
        if in_string:
            if c == "\\":
                i += 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[open_index + 1:i]
        i += 1
    return None


def expected_from_body(body):
    """(the lines the test body REQUIREs, '') or (None, why not)."""
    named = {}
    for m in re.finditer(r"\b(?:lines|std::vector<std::string>)\s+(\w+)\s*\{", body):
        inner = balanced(body, m.end() - 1)
        named[m.group(1)] = cpp_string_list(inner) if inner is not None else None
    for m in re.finditer(r"\blines\s+(\w+)\s*=\s*(\w+)\s*;", body):
        named[m.group(1)] = list(named[m.group(2)]) if named.get(m.group(2)) is not None else None
    for m in re.finditer(r"\b(\w+)\.insert\(\s*\1\.end\(\)\s*,\s*(\w+)\.begin\(\)\s*,\s*\2\.end\(\)\s*\)", body):
        if named.get(m.group(1)) is not None and named.get(m.group(2)) is not None:
            named[m.group(1)] = named[m.group(1)] + named[m.group(2)]
    found = []
    for m in re.finditer(r"\b(?:REQUIRE|CHECK)\s*\(\s*[\w.\[\]>-]+\s*==\s*(?:(?:lines|std::vector<std::string>)\s*(\{)|(\w+)\s*\))",
                         body):
        if m.group(1):
            inner = balanced(body, m.start(1))
            value = cpp_string_list(inner) if inner is not None else None
        elif m.group(2) in named:
            value = named[m.group(2)]
        else:
            continue
        if value is None:
            return None, "the test's expected lines are not all string literals"
        if value not in found:
            found.append(value)
    if not found:
        return None, "no expected lines next to it (no comment, no REQUIRE(... == lines{...}))"
    if len(found) > 1:
        return None, f"the test has {len(found)} different REQUIRE(... == lines{{...}})"
    return found[0], ""


def expectations_in_comments(code, prose_after):
    """(printed lines, expected exception) that the program's comments state."""
    printed, exception = [], ""
    last_code = max((k for k, l in enumerate(code) if l.strip() and not l.lstrip().startswith("#")),
                    default=-1)
    for k, line in enumerate(code):
        if k > last_code and line.startswith("#"):
            printed.append(line[1:].strip())
            continue
        m = re.match(r"^(.*?\S)\s+#\s?(.*)$", line)
        # a trailing comment, not a '#' inside a string
        if m and "#" not in m.group(1) and m.group(1).count('"') % 2 == 0 and m.group(1).count("'") % 2 == 0:
            if re.match(r"^\s*print\(", m.group(1)):
                printed.append(m.group(2).strip())
            elif EXCEPTION_NOTE.match(m.group(2).strip()):
                exception = m.group(2).strip()
    for t in prose_after:
        m = PRINTS_NOTE.match(t.strip())
        if m:
            printed.append(m.group(1).strip())
    return printed, exception


def parse_file(path):
    lines = path.read_text(encoding="utf-8").split("\n")
    tests = [(i, m.group(1)) for i, line in enumerate(lines)
             for m in [re.match(r'^\s*TEST_CASE\s*\(\s*"((?:[^"\\]|\\.)*)"', line)] if m]
    helpers = None
    programs = []
    earlier = []  # the code seen so far, for "...as above"
    for start, indentation, text in comment_blocks(lines):
        first = next((k for k, t in enumerate(text) if IMPORT_ASYNCIO.match(t)), None)
        if start == 0:  # the file's header: shared helpers, if it has code
            if first is not None:
                helpers = program_lines(text, first)[0]
                earlier.extend(helpers)
            continue
        if first is not None:
            kind = "program"
        else:
            first = next((k for k, t in enumerate(text) if CODE_LINE.match(t)), None)
            if first is None or not re.search(r"\basyncio\b|\bawait\b|^->", "\n".join(text[first:]), re.M):
                continue  # prose
            kind = "fragment" if helpers else "sketch"
        prog = Program(file=path, line=start + first + 1)
        for t in text[:first]:
            m = VERSION_NOTE.match(t.strip())
            if m:
                prog.min_python = (int(m.group(1)), int(m.group(2)))
        if indentation > 0:  # inside a test body
            owner = [(i, name) for i, name in tests if i < start][-1:]
        else:
            owner = [(i, name) for i, name in tests if i > start][:1]
        body_start = owner[0][0] if owner else None
        if owner:
            prog.test = owner[0][1]
        prog.notes = KNOWN.get((path.name, prog.test), {})
        code, after = program_lines(text, first)
        programs.append(prog)
        if kind == "sketch":
            prog.code = "\n".join(code)
            prog.skip = "a sketch, not a complete program (no `import asyncio`)"
            continue
        resolved = []
        for line in code:
            m = AS_ABOVE.match(line)
            if not m:
                resolved.append(line)
                continue
            d = definition(earlier, m.group(2))
            if d is None:
                prog.skip = f"`{line.strip()}`: no earlier definition of {m.group(2)}() in the file"
                break
            resolved.extend(m.group(1) + x for x in d)
        code = resolved
        earlier.extend(code)
        printed, exception = expectations_in_comments(code, text[after:])
        if kind == "fragment":
            store = next((m.group(1) for m in (re.match(r"^(\w+)\s*=\s*\[\]\s*$", h) for h in helpers) if m),
                         None)
            code = helpers + code + ["asyncio.run(main())"] + ([f"print({store})"] if store else [])
        prog.code = "\n".join(code) + "\n"
        if prog.skip:
            continue
        if printed or exception:
            prog.expected, prog.expected_exception, prog.expected_from = printed, exception, "comment"
        elif body_start is None:
            prog.skip = "no TEST_CASE after it"
        else:
            end = next((k for k in range(body_start, len(lines)) if lines[k] == "}"), len(lines))
            prog.expected, why = expected_from_body("\n".join(lines[body_start:end + 1]))
            prog.expected_from = "REQUIRE"
            if prog.expected is None:
                prog.skip = why
    return programs


# ---- running them -------------------------------------------------------------------

def network_problem(code):
    """Why the program may not run here (it reaches beyond the loopback), or ''."""
    for line in code.split("\n"):
        if NETWORK_CALL.search(line):
            for host in re.findall(r"""['"]([^'"]*)['"]""", line):
                if host not in LOOPBACK and re.fullmatch(r"[\w.:-]*[.:][\w.:-]*", host):
                    return f"it reaches a host other than the loopback ({host!r})"
    return ""


def run(prog, python, timeout, shift=0):
    """(exit status or None on a timeout, stdout, stderr). shift > 0 first allocates a few
    objects of every small size, which moves the tasks in memory: the order of a set of
    tasks follows their addresses."""
    code = prog.code
    if shift:
        code = f"_trace_parity_shift = [bytes(n) for n in range(0, 512, 8) for _ in range({shift})]\n" + code
    with tempfile.TemporaryDirectory(prefix="aio-trace-") as tmp:
        script = Path(tmp) / f"{prog.file.stem}_{prog.line}.py"
        script.write_text(code, encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        try:
            p = subprocess.run([python, "-I", str(script)], cwd=tmp, env=env, capture_output=True,
                               text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, "", f"timed out after {timeout:g} s"
        return p.returncode, p.stdout, p.stderr


def printed_list(stdout):
    """The list of str a program printed with print(log), or None."""
    out = stdout.strip("\n").split("\n")
    if len(out) != 1:
        return None
    try:
        value = ast.literal_eval(out[0])
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, list) and all(isinstance(x, str) for x in value) else None


def compare(prog, rc, stdout, stderr, version):
    """'' when CPython printed what the test expects, else what differs."""
    if rc is None:
        return stderr
    problems = []
    if prog.expected_exception:
        last = stderr.strip().split("\n")[-1] if stderr.strip() else ""
        if rc == 0 or last != prog.expected_exception:
            problems.append(f"expected the program to end with `{prog.expected_exception}`; "
                            f"exit status {rc}, last line of stderr: {last!r}")
    elif rc != 0:
        problems.append(f"exit status {rc}\n" + indent(stderr.strip()))
    expected = [prog.notes.get("translate", {}).get(line, line) for line in prog.expected]
    got = printed_list(stdout) if prog.expected_from == "REQUIRE" else None
    what = "the list the program printed"
    if got is None:
        got, what = (stdout.rstrip("\n").split("\n") if stdout.strip("\n") else []), "the lines it printed"
    if got != expected:
        source = "the test's REQUIRE" if prog.expected_from == "REQUIRE" else "the comment"
        if prog.notes.get("translate"):
            source += ", translated"
        problems.append("\n".join(difflib.unified_diff(
            expected, got, f"expected ({source})", f"CPython {version}: {what}", lineterm="", n=100)))
    return "\n".join(problems)


def indent(text, by="    "):
    return "\n".join(by + line for line in text.split("\n"))


def interpreter(python):
    """(version text, version tuple, names in its asyncio module)."""
    out = subprocess.run([python, "-I", "-c", "import sys, asyncio; print(*sys.version_info[:3]); "
                          "print(*dir(asyncio))"], capture_output=True, text=True, check=True).stdout
    version, names = out.split("\n")[:2]
    v = tuple(int(x) for x in version.split())
    return ".".join(map(str, v)), v, set(names.split())


def main():
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests-dir", type=Path, default=here, help="where the test_*.cpp files are")
    parser.add_argument("--python", default=sys.executable, help="the CPython to run the programs with")
    parser.add_argument("--timeout", type=float, default=20, help="seconds allowed for each run of a program")
    parser.add_argument("-k", dest="filter", default="", help="only the programs whose file:line or test has this")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every program checked")
    parser.add_argument("--list", action="store_true", help="list the programs found (-v: with their code)")
    parser.add_argument("--strict", action="store_true", help="known mismatches (KNOWN) fail the run too")
    args = parser.parse_args()

    files = sorted(args.tests_dir.glob("test_*.cpp"))
    if not files:
        print(f"trace_parity: no test_*.cpp in {args.tests_dir}", file=sys.stderr)
        return 2
    programs = [p for f in files for p in parse_file(f) if args.filter in p.where or args.filter in p.test]
    if args.list:
        for p in programs:
            print(f"{p.where}  [{p.test}]  " + (f"skip: {p.skip}" if p.skip else f"expected from {p.expected_from}"))
            if args.verbose:
                print(indent(p.code.rstrip()))
        return 0
    version, version_tuple, asyncio_names = interpreter(args.python)
    print(f"trace_parity: {len(programs)} asyncio programs in {len(files)} test files; "
          f"CPython {version} ({args.python})")

    checked, skipped, known, failed = [], [], [], []
    for p in programs:
        reason = p.skip or network_problem(p.code)
        need = p.notes.get("min_python") or p.min_python
        if not reason and need and version_tuple[:2] < need:
            why = p.notes["reason"] if p.notes.get("min_python") else f"the comment says 'Python {need[0]}.{need[1]}:'"
            reason = f"needs CPython {need[0]}.{need[1]}: {why}"
        missing = sorted({n for n in re.findall(r"\basyncio\.(\w+)", p.code) if n not in asyncio_names})
        if not reason and missing:
            reason = f"needs a newer CPython: asyncio.{missing[0]} does not exist in {version}"
        if reason:
            skipped.append((p, reason))
            continue
        attempts = p.notes.get("attempts", DEFAULT_ATTEMPTS)
        for attempt in range(attempts):
            rc, out, err = run(p, args.python, args.timeout, shift=attempt)
            problem = compare(p, rc, out, err, version)
            if not problem or rc is None:
                break
        if problem and rc and not p.expected_exception and \
                re.search(r"^AttributeError: .*\b(asyncio|Queue|Task|TaskGroup|Future|loop)\b", err, re.M):
            skipped.append((p, "needs a newer CPython: " + err.strip().split("\n")[-1]))
            continue
        note = f" ({p.notes['reason']})" if p.notes.get("reason") else ""
        if problem and p.notes.get("mismatch") and not args.strict:
            known.append(p)
            print(f"known mismatch {p.where} [{p.test}]{note}\n{indent(problem)}\n")
        elif problem:
            failed.append(p)
            runs = f", {attempt + 1} runs" if attempt else ""
            print(f"MISMATCH {p.where} [{p.test}]{runs}{note}\n{indent(problem)}\n")
        else:
            checked.append(p)
            if p.notes.get("mismatch"):
                print(f"note: {p.where} [{p.test}] matches now: delete its KNOWN entry")
            if args.verbose:
                again = f", on run {attempt + 1}" if attempt else ""
                print(f"ok       {p.where} [{p.test}]{again}{note}")

    for p, reason in skipped:
        print(f"skipped  {p.where} [{p.test}]: {reason}")
    if not args.filter:
        used = {(p.file.name, p.test) for p in programs}
        for key in KNOWN:
            if key[0] in {f.name for f in files} and key not in used:
                print(f"warning: KNOWN names a test with no program: {key}")
    print(f"trace_parity: {len(checked)} checked, {len(skipped)} skipped, {len(known)} known mismatches, "
          f"{len(failed)} mismatched (CPython {version})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""The sandbox's worker process: runs model-written programs with asteval, one at a time.

Started by `orca_math.verification.sandbox` as ``python -I _sandbox_worker.py ASTEVAL_DIR MEMORY_MB
OUTPUT_BYTES``. It imports only the standard library and asteval (never orca_math), so it starts in
tens of milliseconds and nothing of the parent's state reaches it. Then it locks itself down, for
good, before it reads the first program:

- resource limits: address space (`RLIMIT_AS`), no file writes (`RLIMIT_FSIZE`), no core dumps,
  no new processes (`RLIMIT_NPROC`, which root ignores, hence the filter below);
- on Linux x86-64 and arm64, a seccomp filter that makes fork, clone, exec, socket, ptrace and
  every file open fail with EPERM, whoever the user is;
- its stdout and stderr point at /dev/null; replies go to a private copy of the original stdout.

Protocol: one JSON line per request on stdin (``{"code": ..., "cpu_s": ...}``), one JSON line per
reply (``{"answer": <tagged value> | null, "error": str | null, "output": str, "recycle": bool}``).
Before each program the CPU-time limit is set to the time used so far plus ``cpu_s``, so a runaway
program is killed by the kernel (SIGXCPU) even if the parent is gone. The worker exits when stdin
closes, which is also what happens when its parent dies.
"""

from __future__ import annotations

import ast
import ctypes
import io
import json
import math
import os
import platform
import resource
import struct
import sys
import types
from fractions import Fraction

# The longest answer text sent back; a longer one is an error, not a truncated number.
MAX_ANSWER_CHARS = 1000

# Names a program may use besides Python's operators, loops and functions. No open, no type, no dir,
# no id: only what arithmetic on a word problem needs.
_SAFE_BUILTINS = (
    "abs", "all", "any", "bool", "dict", "divmod", "enumerate", "filter", "float", "format", "int",
    "isinstance", "len", "list", "map", "max", "min", "pow", "print", "range", "reversed", "round",
    "set", "sorted", "str", "sum", "tuple", "zip", "True", "False", "None",
    "ArithmeticError", "Exception", "IndexError", "KeyError", "OverflowError", "TypeError",
    "ValueError", "ZeroDivisionError",
)  # fmt: skip
_MATH_NAMES = (
    "ceil", "comb", "cos", "degrees", "e", "exp", "factorial", "floor", "fsum", "gcd", "hypot",
    "isqrt", "lcm", "log", "log10", "log2", "perm", "pi", "prod", "radians", "sin", "sqrt", "tan",
    "trunc",
)  # fmt: skip


class _CommonForms(ast.NodeTransformer):
    """Rewrites what models commonly write into what asteval runs, with the same meaning.

    `import math`, `from math import sqrt` and `from fractions import Fraction` (with or without `as`)
    become plain assignments from the names the program already has (`math` is a namespace of the
    allowed math names only); an import of anything else is left for asteval to refuse. A generator
    expression, which asteval does not run, becomes the list comprehension it would produce
    (`sum(x for x in items)` -> `sum([x for x in items])`).
    """

    def __init__(self, modules: dict) -> None:
        self.modules = modules
        self.changed = False

    def visit_Import(self, node: ast.Import):
        if not all(alias.name in self.modules for alias in node.names):
            return node
        self.changed = True
        return [_assign(alias.asname or alias.name, ast.Name(alias.name, ast.Load())) for alias in node.names]

    def visit_ImportFrom(self, node: ast.ImportFrom):
        module = self.modules.get(node.module) if node.level == 0 else None
        if module is None or not all(hasattr(module, alias.name) for alias in node.names):
            return node  # `from os import ...`, `from math import *`, a name it lacks: asteval refuses it
        self.changed = True
        return [_assign(alias.asname or alias.name, ast.Attribute(ast.Name(node.module, ast.Load()), alias.name, ast.Load()))
                for alias in node.names]

    def visit_GeneratorExp(self, node: ast.GeneratorExp):
        self.generic_visit(node)
        self.changed = True
        return ast.ListComp(node.elt, node.generators)


def _assign(name: str, value: ast.expr) -> ast.Assign:
    return ast.Assign([ast.Name(name, ast.Store())], value, lineno=0)


def common_forms(code: str, modules: dict) -> str:
    """`code` with `_CommonForms` applied, or unchanged when it has none (or does not parse: asteval says why)."""
    if "import" not in code and "for" not in code:  # most programs: no second parse (it costs about 0.1 ms)
        return code
    try:
        tree = ast.parse(code)
        rewriter = _CommonForms(modules)
        tree = rewriter.visit(tree)
        return ast.unparse(ast.fix_missing_locations(tree)) if rewriter.changed else code
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return code


class OutputCap(io.TextIOBase):
    """Keeps what a program prints up to a byte cap; past it, printing raises."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0
        self.overflowed = False

    def write(self, text: str) -> int:
        size = len(text.encode("utf-8", "replace"))
        if self.size + size > self.limit:
            self.overflowed = True
            raise RuntimeError(f"the program printed more than {self.limit} bytes")
        self.parts.append(text)
        self.size += size
        return len(text)

    def text(self) -> str:
        return "".join(self.parts)


def tag_answer(value: object) -> dict:
    """The answer as JSON the parent can normalise: exactly one of int/float/fraction/str/type."""
    if isinstance(value, bool):
        return {"type": "bool"}
    if isinstance(value, int):
        digits = str(value) if abs(value) < 10**MAX_ANSWER_CHARS else None
        return {"int": digits} if digits is not None else {"type": "int", "too_long": True}
    if isinstance(value, float):
        return {"float": repr(value)}
    if isinstance(value, Fraction):
        if max(abs(value.numerator), value.denominator) >= 10**MAX_ANSWER_CHARS:
            return {"type": "Fraction", "too_long": True}
        return {"fraction": [str(value.numerator), str(value.denominator)]}
    if isinstance(value, str):
        if len(value) > MAX_ANSWER_CHARS:
            return {"type": "str", "too_long": True}
        return {"str": value}
    return {"type": type(value).__name__}


def run(code: str, output_bytes: int, asteval_module) -> dict:
    """Run one program in a fresh interpreter and describe its `answer` (or why there is none)."""
    writer = OutputCap(output_bytes)
    symbols = {name: getattr(math, name) for name in _MATH_NAMES if hasattr(math, name)}
    symbols["Fraction"] = Fraction
    # `math.sqrt(x)` and `fractions.Fraction(...)` work too: namespaces of the same names, nothing more.
    modules = {"math": types.SimpleNamespace(**{k: v for k, v in symbols.items() if k != "Fraction"}),
               "fractions": types.SimpleNamespace(Fraction=Fraction)}
    symbols.update(modules)
    symbols["__name__"] = "__main__"  # so the `if __name__ == "__main__":` guard that models add runs its body
    code = common_forms(code, modules)
    interpreter = asteval_module.Interpreter(
        symtable=_symbol_table(asteval_module, symbols), writer=writer, err_writer=io.StringIO(),
        use_numpy=False, max_statement_length=len(code) + 1,
    )  # fmt: skip
    try:
        interpreter.eval(code, show_errors=False, raise_errors=False)
    except MemoryError:
        return _reply(None, "the program ran out of memory", writer, recycle=True)
    except RecursionError:
        return _reply(None, "the program recursed too deeply (RecursionError)", writer, recycle=True)
    except Exception as error:  # noqa: BLE001 - asteval should catch these; report, never die
        return _reply(None, f"{type(error).__name__}: {error}", writer, recycle=True)
    if writer.overflowed:  # checked first: asteval's message would quote the huge text
        return _reply(None, f"the program printed more than {output_bytes} bytes", writer)
    if interpreter.error:
        name, message = interpreter.error[0].get_error()
        if name == "MemoryError":
            return _reply(None, "the program ran out of memory", writer, recycle=True)
        if name == "RecursionError":
            # Python unwinds a RecursionError cleanly, so the worker stays (a new one costs ~100 ms)
            return _reply(None, "the program recursed too deeply (RecursionError)", writer)
        last = message.strip().splitlines()[-1] if message.strip() else name
        last = last if last.startswith(name) else f"{name}: {last}"
        return _reply(None, last if len(last) <= 300 else last[:297] + "...", writer)
    if "answer" not in interpreter.symtable:
        return _reply(None, "the program assigned no variable named `answer`", writer)
    return _reply(tag_answer(interpreter.symtable["answer"]), None, writer)


_BASE_TABLE: dict = {}


def _symbol_table(asteval_module, extra: dict) -> dict:
    """A fresh table for each program (built from one filtered copy), so no program sees another's names."""
    if not _BASE_TABLE:
        table = asteval_module.make_symbol_table(use_numpy=False, nested=False)
        _BASE_TABLE.update((name, value) for name, value in table.items() if name in _SAFE_BUILTINS)
        _BASE_TABLE.update(extra)
    return dict(_BASE_TABLE)


def _reply(answer: dict | None, error: str | None, writer: OutputCap, recycle: bool = False) -> dict:
    return {"answer": answer, "error": error, "output": writer.text(), "recycle": recycle}


# ---- locking the process down ------------------------------------------------------------------------

_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_SECCOMP_RET_ALLOW = 0x7FFF0000
_SECCOMP_RET_ERRNO = 0x00050000
_EPERM = 1
# Per architecture: the audit arch constant and the system calls refused. open/openat go too: after
# start-up the worker never needs a file, so a program that escaped asteval could still read none.
_SECCOMP_DENY = {
    "x86_64": (
        0xC000003E,
        {"fork": 57, "vfork": 58, "clone": 56, "clone3": 435, "execve": 59, "execveat": 322,
         "socket": 41, "ptrace": 101, "open": 2, "openat": 257, "openat2": 437, "creat": 85},
    ),
    "aarch64": (
        0xC00000B7,
        {"clone": 220, "clone3": 435, "execve": 221, "execveat": 281, "socket": 198,
         "ptrace": 117, "openat": 56, "openat2": 437},
    ),
}  # fmt: skip


def _bpf(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def install_seccomp_filter() -> bool:
    """Refuse process creation, exec, sockets, ptrace and file opens from now on; False if unsupported."""
    machine = platform.machine().lower()
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    if not sys.platform.startswith("linux") or machine not in _SECCOMP_DENY:
        return False
    arch, calls = _SECCOMP_DENY[machine]
    load_w_abs, jeq_k, ret_k = 0x20, 0x15, 0x06
    denied = sorted(set(calls.values()))
    program = [
        _bpf(load_w_abs, 0, 0, 4),  # seccomp_data.arch
        _bpf(jeq_k, 1, 0, arch),
        _bpf(ret_k, 0, 0, _SECCOMP_RET_ERRNO | _EPERM),  # another ABI (x32, ia32): refuse everything
        _bpf(load_w_abs, 0, 0, 0),  # seccomp_data.nr
    ]
    if machine == "x86_64":  # x32 system calls carry bit 30; refuse them all
        program.append(_bpf(0x35, len(denied) + 1, 0, 0x40000000))  # JGE -> deny
    for index, number in enumerate(denied):
        program.append(_bpf(jeq_k, len(denied) - index, 0, number))
    program.append(_bpf(ret_k, 0, 0, _SECCOMP_RET_ALLOW))
    program.append(_bpf(ret_k, 0, 0, _SECCOMP_RET_ERRNO | _EPERM))
    filters = ctypes.create_string_buffer(b"".join(program))

    class _Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = _Program(len(program), ctypes.addressof(filters))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return False
    pointer = ctypes.cast(ctypes.pointer(fprog), ctypes.c_void_p).value
    return libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, pointer, 0, 0) == 0


def apply_limits(memory_mb: int) -> None:
    """Resource limits that hold for the rest of this process's life."""
    memory = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    install_seccomp_filter()


def set_cpu_limit(cpu_s: float) -> None:
    """Let the next program use `cpu_s` more seconds of CPU; past that the kernel sends SIGXCPU."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = usage.ru_utime + usage.ru_stime
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = math.ceil(used + cpu_s)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def main(argv: list[str]) -> None:
    """Load asteval, lock down, say ready (or why not), then serve programs until stdin closes."""
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)
    requests = sys.stdin
    try:
        asteval_dir, memory_mb, output_bytes = argv[0], int(argv[1]), int(argv[2])
        sys.path.insert(0, asteval_dir)
        # asteval imports numpy when it can (about 0.2 s); programs here never get numpy's names, so
        # refusing the import makes a worker start several times faster and keeps numpy out of reach.
        sys.modules["numpy"] = None
        import asteval  # noqa: PLC0415 - found through the directory the parent passed

        run("answer = Fraction(1, 2) + sqrt(4)\nprint(answer)", output_bytes, asteval)  # warm every import
        apply_limits(memory_mb)
    except Exception as error:  # noqa: BLE001 - the parent must learn why, not just see an exit
        replies.write(json.dumps({"ready": False, "error": f"{type(error).__name__}: {error}"}) + "\n")
        replies.flush()
        return
    replies.write('{"ready": true}\n')
    replies.flush()
    for line in requests:
        try:
            request = json.loads(line)
            set_cpu_limit(float(request["cpu_s"]))
            reply = run(str(request["code"]), output_bytes, asteval)
        except MemoryError:
            reply = {"answer": None, "error": "the program ran out of memory", "output": "", "recycle": True}
        try:
            text = json.dumps(reply)
        except (MemoryError, ValueError):
            text = json.dumps({"answer": None, "error": "the reply could not be encoded", "output": "",
                               "recycle": True})  # fmt: skip
        replies.write(text + "\n")
        replies.flush()


if __name__ == "__main__":
    main(sys.argv[1:])

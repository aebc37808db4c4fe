"""ProgramWriter: a short Python program that computes a problem's answer, for program verification."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from orca_math.agents.base import Agent, ReplyParseError
from orca_math.records import Program

_CODE_BLOCK = re.compile(r"```[ \t]*(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)
_ASSIGNS_ANSWER = re.compile(r"^[ \t]*answer[ \t]*(?::[^=\n]*)?=(?!=)", re.MULTILINE)
#: Programs longer than this are refused before they reach the sandbox: a word problem needs a few lines.
MAX_PROGRAM_CHARS = 20_000


class ProgramWriter(Agent[Program]):
    """Writes a Python program that assigns a word problem's answer to the variable `answer`.

    Inputs: `question`. Output: `Program(code)`.

    The program is read from the reply's first code block (or the whole reply, when it has no
    block). A reply with no assignment to `answer` is a parse error, asked again with the reason.
    The program is not run here: the `program` verifier runs it in the sandbox
    (`orca_math.verification.run_program`). It never sees the Teacher's solution, so its answer is
    an independent check.
    """

    card_name = "program_writer"
    output_type = Program

    def parse(self, reply: str, inputs: Mapping[str, Any]) -> Program:
        blocks = _CODE_BLOCK.findall(reply)
        code = (blocks[0] if blocks else reply).strip()
        if not code:
            raise ReplyParseError("empty reply; write the program in one ```python code block", reply)
        if len(code) > MAX_PROGRAM_CHARS:
            raise ReplyParseError(f"the program is {len(code)} characters long; a word problem needs a few lines", reply)
        if not _ASSIGNS_ANSWER.search(code):
            raise ReplyParseError("the program assigns no variable named `answer`; end it with `answer = ...`", reply)
        return self.validate_output({"code": code}, reply)

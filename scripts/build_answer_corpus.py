"""Build the answer-checking corpus: realistic replies made mechanically from benchmark gold solutions.

The replies are not written by hand next to the rules. Each one starts from a gold solution of GSM8K
(its worked steps, written by people), SVAMP (its equation) or ASDiv (its formula), and is rewritten by
one mechanical transformation whose expected verdict follows from the construction:

- equal: ``plain`` (the steps as they are), ``recap`` (a sentence built from the question's numbers
  after the answer), ``answer_first`` (the closing statement moved first, the steps after it),
  ``words`` (the answer spelled in words, mixed numbers such as "two and a half" included),
  ``aside`` (a "for comparison" or parenthesised remark with another number after the answer),
  ``sum`` (a long closing sentence that adds parts up to the answer), ``duration`` (a time given in
  two units, "95 minutes (that is 1 hour 35 minutes)"), ``markdown`` (bold or LaTeX answer),
  ``markdown_steps`` (GSM8K only: a heading, bold numbered steps with inline LaTeX equations, a bold
  conclusion, sometimes a recap after it);
- not_equal: ``hedge`` (two values, a range, or "or ..." in the final statement) and ``wrong_*`` (one
  of the transformations above with a wrong final value).

Each source problem goes to the tuning split or the held-out split by a hash of its id, fixed before
any rule was tuned: the rules are never tuned on held-out cases (``tests/test_answer_corpus.py``
reports the two splits apart).

Usage:
    ORCA_MATH_BENCHMARKS_DIR=../shared/data/benchmarks python scripts/build_answer_corpus.py \
        [--out tests/data/answer_corpus.jsonl.gz]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
from fractions import Fraction
from pathlib import Path

from orca_math.data.benchmarks import BenchmarkError, load_benchmark

HELD_OUT_SHARE = 4  # one source problem in four is held out
PER_SOURCE = {"gsm8k": 800, "svamp": 350, "asdiv": 350}
# GSM8K's train split adds problems that ask for a duration (few test problems do), for durations only.
DURATION_SOURCE = ("gsm8k", "train", 300)
TRANSFORMS_PER_ITEM = 2


def digest(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest(), 16)


def split_of(source_id: str) -> str:
    return "held_out" if digest(f"split:{source_id}") % HELD_OUT_SHARE == 0 else "tuning"


# ---- numbers as people write them ------------------------------------------------------------------------

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_PARTS = {2: ("half", "halves"), 3: ("third", "thirds"), 4: ("quarter", "quarters"), 5: ("fifth", "fifths"),
          8: ("eighth", "eighths"), 10: ("tenth", "tenths")}


def int_words(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else "-" + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " and " + int_words(rest))
    if n < 1_000_000:
        rest = n % 1000
        return int_words(n // 1000) + " thousand" + ("" if rest == 0 else (" and " if rest < 100 else " ") + int_words(rest))
    raise ValueError(n)


def words(value: Fraction) -> str | None:
    """ "eighteen", "two and three-eighths", "five and a half", "three quarters"; None when not simple."""
    whole, part = divmod(value, 1)
    if value < 0 or whole >= 1_000_000 or part.denominator not in _PARTS and part:
        return None
    if not part:
        return int_words(int(whole))
    one, many = _PARTS[part.denominator]
    if part.numerator == 1:
        fraction = ("a " if whole else "one ") + one if part.denominator != 2 else "a half" if whole else "one half"
    else:
        fraction = f"{_ONES[part.numerator]}-{many}"
    return fraction if not whole else f"{int_words(int(whole))} and {fraction}"


def digits(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):.10g}" if 10**6 % value.denominator == 0 else f"{value.numerator}/{value.denominator}"


def thousands(value: Fraction) -> str:
    return f"{value.numerator:,}" if value.denominator == 1 else digits(value)


# ---- what the question asks ------------------------------------------------------------------------------

_ASK = re.compile(r"\bhow\s+(many|much|long)\b(?:\s+(?:more|fewer|less|total|in\s+total))?\s*([a-z]+(?:\s+[a-z]+)?)?", re.I)
_MONEY = re.compile(r"\$|\bdollars?\b|\bcents?\b|\bcost\b|\bpay\b|\bspend\b|\bearn\b|\bmoney\b|\bprofit\b", re.I)
_NOT_NOUNS = frozenset("did does do is are was were will would can could has have had of the a an he she they it "
                       "we you his her their in more".split())


def ask_of(question: str) -> tuple[str, str]:
    """(kind, noun) of the question's ask: kind "money", "minutes", "hours", "count" or "other"."""
    last = re.split(r"(?<=[.!?])\s+", question.strip())[-1]
    match = _ASK.search(last) or _ASK.search(question)
    if match is None:
        return "other", ""
    how, noun = match.group(1).lower(), (match.group(2) or "").lower().split()
    for unit in ("minutes", "hours"):
        if unit in noun or (how == "long" and unit in last.lower()):
            return unit, unit
    if how == "much" and (_MONEY.search(last) or (noun and noun[0] in ("money", "dollars"))):
        return "money", "dollars"
    if how == "many" and noun and noun[0] not in _NOT_NOUNS:
        return "count", noun[0]
    return "other", ""


def show(value: Fraction, kind: str, noun: str) -> str:
    """The answer as a reply writes it: "$18", "540 meters", "2.5"."""
    if kind == "money":
        return f"${digits(value)}"
    return f"{digits(value)} {noun}".strip() if noun else digits(value)


# ---- sources ---------------------------------------------------------------------------------------------

_NOTE = re.compile(r"<<[^<>]*>>")
_NUMBER = re.compile(r"(?<![\w.,])\$?\d[\d,]*(?:\.\d+)?(?![\d])")


def clean_number(text: str) -> str:
    return re.sub(r"(\d+)\.0\b", r"\1", text)


def gsm8k_steps(row: dict) -> list[str] | None:
    body = row["answer"].split("####")[0]
    lines = [line.strip() for line in _NOTE.sub("", body).splitlines() if line.strip()]
    return [line if line.endswith((".", "!", "?")) else line + "." for line in lines] or None


def equation_steps(row: dict, expression: str, gold: Fraction) -> list[str]:
    kind, noun = ask_of(row["question"])
    expression = " ".join(clean_number(expression).replace("(", " ( ").replace(")", " ) ").split())
    expression = expression.replace("( ", "(").replace(" )", ")")
    opener = ("We compute", "Working it out:", "From the problem,", "The calculation is")[digest(row["id"]) % 4]
    closing = _CLOSINGS[digest("closing" + row["id"]) % len(_CLOSINGS)]
    return [f"{opener} {expression} = {digits(gold)}.", closing.format(v=show(gold, kind, noun))]


_CLOSINGS = ("So the answer comes to {v}.", "Therefore, there are {v} in all.", "That gives {v}.",
             "So the result is {v}.", "Hence we get {v}.", "Thus, {v}.", "So, {v} altogether.")


def sources() -> list[dict]:
    items = []
    for name, count in PER_SOURCE.items():
        items.extend(_items(name, load_benchmark(name), count))
    name, split, count = DURATION_SOURCE
    asks_time = [row for row in load_benchmark(name, split=split) if ask_of(row["question"])[0] in ("minutes", "hours")]
    for item in _items(name, asks_time, count):
        items.append({**item, "only": "duration"})
    return items


def _items(name: str, dataset, count: int) -> list[dict]:
    """Up to `count` rows of `dataset` (in an order fixed by a hash of their ids) with their worked steps."""
    items = []
    for row in sorted(dataset, key=lambda r: digest(f"pick:{r['id']}")):
        if len(items) == count:
            break
        gold = Fraction(row["gold"])
        if name == "gsm8k":
            steps = gsm8k_steps(row)
        elif name == "svamp":
            steps = equation_steps(row, row["Equation"], gold)
        elif " r" in row["formula"] or "=" not in row["formula"]:
            continue  # ASDiv's "17/7=2 r3": a quotient with a remainder
        else:
            steps = equation_steps(row, row["formula"].rsplit("=", 1)[0], gold)
        if steps and gold >= 0:
            items.append({"id": row["id"], "source": name, "question": row["question"], "gold": row["gold"],
                          "value": gold, "steps": steps})
    return items


# ---- transformations -------------------------------------------------------------------------------------


def _writings(sentence: str, value: Fraction) -> int:
    """How often `sentence` writes `value`, in digits or in words ("three plums because .75 / .25 = 3")."""
    spelled = words(value)
    in_words = len(re.findall(rf"\b{spelled}\b", sentence, re.I)) if spelled else 0
    return in_words + sum(1 for m in _NUMBER.finditer(sentence) if _value_of(m.group()) == value)


def _value_of(text: str) -> Fraction | None:
    try:
        return Fraction(text.lstrip("$").replace(",", ""))
    except ValueError:
        return None


def last_answer_span(sentence: str, value: Fraction) -> tuple[int, int] | None:
    """Where the last writing of `value` is in `sentence` (with its "$", without commas' doubt)."""
    found = None
    for match in _NUMBER.finditer(sentence):
        if _value_of(match.group()) == value:
            found = match.span()
    return found


def replace_answer(sentence: str, value: Fraction, new: Fraction | str) -> str | None:
    """`sentence` with its last writing of `value` replaced by `new` (a value keeps the "$" and commas).

    None when `value` is not written in `sentence`, or when a wrong value would replace one of two
    writings of it ("They cost $8 each because 216 / 27 = 8"): the reply would then state both.
    """
    span = last_answer_span(sentence, value)
    if span is None or (isinstance(new, Fraction) and _writings(sentence, value) > 1):
        return None
    start, end = span
    if isinstance(new, Fraction):
        new = ("$" if sentence[start] == "$" else "") + (thousands(new) if "," in sentence[start:end] else digits(new))
    return sentence[:start] + new + sentence[end:]


def wrong_value(item: dict, salt: str) -> Fraction:
    value = item["value"]
    choices = [value + 1, value + 2, value + 10, value * 2 if value else Fraction(3), value - 1, value + 5]
    choices = [c for c in choices if c > 0 and c != value and abs(c - value) >= Fraction(1, 2)]
    return choices[digest(salt + item["id"]) % len(choices)]


_GIVEN = re.compile(r"(?<![\w.,/])\$?\d[\d,]*(?:\.\d+)?(?:/\d+)?%?(?![\d/])")


def question_numbers(question: str) -> list[str]:
    """The question's numbers as it writes them: "$40", "25%", "1/5"."""
    return [m.group().rstrip(",") for m in _GIVEN.finditer(question)]


def question_sentence(question: str) -> str | None:
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", question.strip()) if _NUMBER.search(s) and not s.endswith("?")]
    return sentences[0] if sentences else None


def t_plain(item: dict, value: Fraction | None = None) -> str | None:
    steps = list(item["steps"])
    if value is not None:
        steps[-1] = replace_answer(steps[-1], item["value"], value)
        if steps[-1] is None:
            return None
    return "\n".join(steps)


def t_recap(item: dict, value: Fraction | None = None) -> str | None:
    reply = t_plain(item, value)
    numbers = question_numbers(item["question"])
    sentence = question_sentence(item["question"])
    if reply is None or not numbers:
        return None
    choice = digest("recap" + item["id"]) % 4
    if choice == 0 and sentence:
        recap = f"Recall that {sentence[0].lower() + sentence[1:]}"
    elif choice == 1 and sentence:
        recap = f"(The problem says: {sentence})"
    elif choice == 2:
        listed = numbers[:3]
        recap = "We started from " + (", ".join(listed[:-1]) + " and " + listed[-1] if len(listed) > 1 else listed[0]) + "."
    else:
        recap = f"This used the {numbers[0]} given in the problem."
    return reply + " " + recap


_OPENERS = ("Here is how:", "Here's why:", "Explanation:", "To see this:", "Step by step:", "Working:")


def t_answer_first(item: dict, value: Fraction | None = None) -> str | None:
    steps = item["steps"]
    final = steps[-1] if value is None else replace_answer(steps[-1], item["value"], value)
    if final is None:
        return None
    opener = _OPENERS[digest("opener" + item["id"]) % len(_OPENERS)]
    rest = steps[:-1]
    if not rest:
        numbers = question_numbers(item["question"])
        rest = [f"We were given {' and '.join(numbers[:2])}."] if numbers else []
    return " ".join([final, opener, *rest])


def t_words(item: dict, value: Fraction | None = None) -> str | None:
    target = item["value"] if value is None else value
    spelled = words(target)
    if spelled is None:
        return None
    steps = list(item["steps"])
    span = last_answer_span(steps[-1], item["value"])
    if span is None or (value is not None and _writings(steps[-1], item["value"]) > 1):
        return None
    dollar = steps[-1][span[0]] == "$"
    unit = (" dollar" if target == 1 else " dollars") if dollar else ""
    steps[-1] = steps[-1][: span[0]] + spelled + unit + steps[-1][span[1] :]
    return "\n".join(steps)


def t_aside(item: dict, value: Fraction | None = None) -> str | None:
    reply = t_plain(item, value)
    if reply is None:
        return None
    answer = item["value"] if value is None else value
    numbers = question_numbers(item["question"])
    choice = digest("aside" + item["id"]) % 4
    if choice == 0:
        aside = f"For comparison, twice that would be {digits(answer * 2)}, but only the one amount was asked."
    elif choice == 1 and numbers:
        aside = f"(As a side note, the {numbers[0]} from the problem stays the same.)"
    elif choice == 2:
        aside = f"For comparison, one more would have made {digits(answer + 1)}."
    else:
        aside = f"Note that half of it would be {digits(answer / 2)}."
    return reply + " " + aside


def t_sum(item: dict, value: Fraction | None = None) -> str | None:
    answer = item["value"]
    if answer.denominator != 1 or answer < 6:
        return None
    first = answer // 3 + digest("sum" + item["id"]) % 3
    second = answer // 4
    third = answer - first - second
    kind, noun = ask_of(item["question"])
    total = answer if value is None else value
    shown = show(total, kind, noun)
    what = ("the three parts", "all the amounts", "everything")[digest("what" + item["id"]) % 3]
    closing = f"Adding {what} together, {first} + {second} + {third} gives a total of {shown}."
    return "\n".join([*item["steps"][:-1], closing])


def t_duration(item: dict, value: Fraction | None = None) -> str | None:
    kind, _ = ask_of(item["question"])
    total = item["value"] if value is None else value
    if kind == "minutes" and total.denominator == 1 and total >= 60:
        hours, minutes = divmod(int(total), 60)
        two = f"{hours} hour{'s' * (hours != 1)}" + (f" {minutes} minutes" if minutes else "")
        forms = (f"So it takes {total} minutes (that is {two}).", f"So it takes {two}, or {total} minutes in all.",
                 f"In total: {two}.")
    elif kind == "hours" and (total * 60).denominator == 1 and total > 0:
        minutes = int(total * 60)
        unit = "hour" if total == 1 else "hours"
        forms = (f"So it takes {digits(total)} {unit} ({minutes} minutes).",
                 f"So the total time is {minutes} minutes, i.e. {digits(total)} {unit}.")
    else:
        return None
    # Each form states the time anew ("So it takes ..."): a "That is ..." would refer back to the step it
    # replaces, which computed another value, and the reply would contradict itself.
    closing = forms[digest("duration" + item["id"]) % len(forms)]
    return "\n".join([*item["steps"][:-1], closing])


def t_markdown(item: dict, value: Fraction | None = None) -> str | None:
    steps = list(item["steps"])
    target = digits(item["value"] if value is None else value)
    style = digest("md" + item["id"]) % 3
    span = last_answer_span(steps[-1], item["value"])
    dollar = span is not None and steps[-1][span[0]] == "$"
    new = f"**{'$' * dollar}{target}**" if style != 1 else f"$\\$${target}$" if dollar else f"$\\boxed{{{target}}}$"
    replaced = replace_answer(steps[-1], item["value"], new)
    if replaced is None or (value is not None and _writings(steps[-1], item["value"]) > 1):
        return None
    steps[-1] = replaced
    return "\n".join(steps)


_EQUATION = re.compile(r"\$?\d[\d,.]*(?:\s*[-+*/x×]\s*\$?\d[\d,.]*)+\s*=\s*\$?\d[\d,.]*")


def latex(sentence: str) -> str:
    """The sentence with its equations in inline LaTeX: "9 * 2 = $18" -> "\\( 9 \\times 2 = \\$18 \\)"."""
    def math(match: re.Match[str]) -> str:
        body = match.group().replace("$", "\\$").replace("*", " \\times ").replace("/", " \\div ")
        return "\\( " + " ".join(body.split()) + " \\)"

    return _EQUATION.sub(math, sentence)


def t_markdown_steps(item: dict, value: Fraction | None = None) -> str | None:
    """A chat model's layout: a heading, bold numbered steps with LaTeX equations, a bold conclusion."""
    steps = item["steps"]
    final = steps[-1] if value is None else replace_answer(steps[-1], item["value"], value)
    if final is None or len(steps) < 2:
        return None
    lines = ["### Solution", ""]
    for number, step in enumerate(steps[:-1], 1):
        lines += [f"**Step {number}:** {latex(step)}", ""]
    lines.append(f"**{latex(final).rstrip('.')}.**")
    if digest("md-recap" + item["id"]) % 2:
        numbers = question_numbers(item["question"])
        if len(numbers) >= 2:
            lines += ["", f"We used the given values {numbers[0]} and {numbers[1]}."]
    return "\n".join(lines)


def t_hedge(item: dict) -> str | None:
    answer = item["value"]
    other = wrong_value(item, "hedge")
    kind, noun = ask_of(item["question"])
    low, high = sorted((answer, other))
    forms = (f"So it is either {show(answer, kind, noun)} or {show(other, kind, noun)}.",
             f"Answer: {digits(low)}–{digits(high)}",
             f"So the result is {show(answer, kind, noun)} (or {digits(other)} under the other reading).",
             f"That gives {digits(answer)} or {digits(other)} {noun}.".replace(" .", "."),
             f"So somewhere between {digits(low)} and {digits(high)}.")
    closing = forms[digest("hedge" + item["id"]) % len(forms)]
    return "\n".join([*item["steps"], closing])


# Only for GSM8K's multi-step solutions, one problem in two, as a third transformation (added after the
# first corpus: the others' picks stay as they were).
EXTRA = {"markdown_steps": t_markdown_steps}
EQUAL = {"plain": t_plain, "recap": t_recap, "answer_first": t_answer_first, "words": t_words, "aside": t_aside,
         "sum": t_sum, "duration": t_duration, "markdown": t_markdown}
# The failure classes each transformation exercises.
CLASSES = {"plain": "plain", "recap": "1 recap", "answer_first": "1 recap", "aside": "2 aside", "words": "3 words",
           "duration": "4 duration", "sum": "5 long closing sentence", "hedge": "6 hedge", "markdown": "plain",
           "markdown_steps": "7 markdown steps"}


def cases_of(item: dict) -> list[dict]:
    """The cases one source problem gives: two transformations picked by hash, a duration when it asks
    for one, and for one problem in five a hedge."""
    if item.get("only"):
        return _made(item, [item["only"]])
    chosen = [n for n in sorted(EQUAL, key=lambda n: digest(n + item["id"])) if n != "duration"][:TRANSFORMS_PER_ITEM]
    if ask_of(item["question"])[0] in ("minutes", "hours"):
        chosen.append("duration")
    made = _made(item, chosen)
    if item["source"] == "gsm8k" and digest("extra?" + item["id"]) % 2 == 0:
        made += _made(item, list(EXTRA))
    if digest("hedge?" + item["id"]) % 5 == 0:
        made.append(_case(item, "hedge", CLASSES["hedge"], t_hedge(item), "not_equal"))
    return made


def _made(item: dict, chosen: list[str]) -> list[dict]:
    """One case per transformation; one in three gets a wrong final value (expected not_equal)."""
    made = []
    for name in chosen:
        wrong = digest("wrong" + name + item["id"]) % 3 == 0
        value = wrong_value(item, name) if wrong else None
        reply = {**EQUAL, **EXTRA}[name](item, value)
        if reply is not None:
            made.append(_case(item, ("wrong_" if wrong else "") + name, CLASSES[name], reply,
                              "not_equal" if wrong else "equal"))
    return made


def _case(item: dict, transform: str, klass: str, reply: str, expected: str) -> dict:
    return {"id": f"{item['id']}:{transform}", "split": split_of(item["id"]), "source": item["source"],
            "transform": transform, "class": klass, "question": item["question"], "gold": item["gold"],
            "reply": reply, "expected": expected}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="tests/data/answer_corpus.jsonl.gz")
    args = parser.parse_args()
    out = Path(args.out)
    if not out.parent.is_dir():
        raise SystemExit(f"--out {out}: the folder {out.parent} does not exist.")
    try:
        cases = [case for item in sources() for case in cases_of(item)]
    except BenchmarkError as error:  # no offline copy where ORCA_MATH_BENCHMARKS_DIR points
        raise SystemExit(f"{error} Set ORCA_MATH_BENCHMARKS_DIR to the benchmarks folder.") from None
    # mtime=0: the same sources give the same bytes, so a rebuild shows no spurious diff.
    try:
        with open(out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as handle:
            for case in cases:
                handle.write((json.dumps(case, ensure_ascii=False) + "\n").encode())
    except OSError as error:
        raise SystemExit(f"--out {out}: {error.strerror or error}.") from None
    by_split = {s: sum(1 for c in cases if c["split"] == s) for s in ("tuning", "held_out")}
    print(f"wrote {len(cases)} cases to {out} ({by_split})")


if __name__ == "__main__":
    main()

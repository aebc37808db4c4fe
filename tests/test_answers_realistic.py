"""check_answer on replies written the way models write them (issue #23): each failure class.

Each class is checked both ways: the right answer is "equal", and a wrong gold is "not_equal", so a
rule that only ever says "equal" (or only picks the last number) fails here.
"""

from __future__ import annotations

import pytest

from orca_math.answers import AnswerPolicy, check_answer, extract_final_answer, parse_number
from orca_math.answers.ask import read_ask

LENA = "Lena had 50 marbles. She lost 12 and gave away 7. How many marbles does Lena have now?"


def verdict(gold: str, reply: str, question: str | None = None) -> str:
    return check_answer(gold, reply, question=question).result


# ---- 1. a recap after the answer -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        "So Lena has 31 marbles now. She began with 50, lost 12 and gave away 7.",
        "50 - 12 - 7 = 31, so Lena has 31 marbles now. Recall that she had 50 marbles at first.",
        "So Lena has 31 marbles now. We started from 50, 12 and 7.",
        "So Lena has 31 marbles now. Lena had 50 marbles.",  # a sentence of the question, written again
    ],
)
def test_a_recap_after_the_answer_is_set_aside(reply):
    assert verdict("31", reply, LENA) == "equal"
    assert verdict("50", reply, LENA) == "not_equal"
    assert verdict("7", reply, LENA) == "not_equal"


def test_a_counterfactual_after_the_answer_is_set_aside():
    question = "A trip costs $140, and she has a coupon for $14 off. How much does she pay for the trip?"
    reply = "The trip costs $126. Without the coupon it would have been $140, so she saved $14."
    assert verdict("126", reply, question) == "equal"
    assert verdict("14", reply, question) == "not_equal"


@pytest.mark.parametrize("opener", ["Here's why:", "Let's break it down:", "Breakdown:", "How I got there:",
                                    "Here is my reasoning:", "Explanation -", "Let me walk you through it.",
                                    "Here's the math:"])
def test_an_answer_first_then_its_explanation(opener):
    question = "Tommy caught 3 more fish than Darren, who caught 6 fewer than Naomi's 17. How many fish did Tommy catch?"
    reply = f"Tommy caught 11 + 3 = 14 fish. {opener} Darren caught 17 - 6 = 11 fish."
    assert verdict("14", reply, question) == "equal"
    assert verdict("11", reply, question) == "not_equal"
    assert extract_final_answer(reply, question=question).span[1] < reply.index(opener)


# ---- 2. an aside after the answer ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "aside",
    [
        "For comparison, the field's area would be 240 square metres, but only the length was asked.",
        "As a side note, doubling it would give 128.",
        "(As a side note, the 16 from the problem stays the same.)",
        "Note that half of it would be 32.",
        # It says itself that it answers something else.
        "Over a whole 4-field farm that would come to 240 m, though only one field was asked about.",
        "A fence twice as high would cost 240 dollars, which was not asked.",
        "*Fun fact:* a fence around 4 such fields would be 240 m long.",
    ],
)
def test_an_aside_after_the_answer_is_set_aside(aside):
    question = "A square field has sides of 16 m. How long is the fence around it?"
    reply = f"The fence is 4 * 16 = 64 m long. {aside}"
    assert verdict("64", reply, question) == "equal"
    assert verdict("240", reply, question) == "not_equal"


# ---- 3. answers in words, mixed numbers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("words", "value"),
    [("two and three-eighths", "19/8"), ("five and a half", "11/2"), ("one half", "1/2"), ("three halves", "3/2"),
     ("two and a quarter", "9/4"), ("three quarters", "3/4"), ("five and seven-tenths", "57/10")],
)
def test_mixed_numbers_in_words_are_read(words, value):
    assert str(parse_number(words)) == value


def test_answers_in_words_decide_and_are_sure_enough_for_hybrid_grading():
    reply = "19 cookies are shared by 8 children, so each child gets two and three-eighths cookies."
    assert verdict("2.375", reply) == "equal" and verdict("19/8", reply) == "equal"
    assert verdict("2.5", reply) == "not_equal"
    metres = "She cut 4.5 m from the 10 m roll. She has five and a half metres left."
    sure = check_answer("5.5", metres, min_confidence="sole")
    assert sure.result == "equal"
    assert check_answer("4.5", metres, min_confidence="sole").result == "not_equal"
    assert verdict("1", "So one carrot costs $2 / $2 = one dollar.") == "equal"
    # An ordinal is not a fraction: "the third day" stays words.
    assert parse_number("the third day") is None


# ---- 4. a duration given twice ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        "95 minutes remain (that is 1 hour 35 minutes).",
        "So 95 minutes remain, or 1 hour and 35 minutes.",
        "That leaves 1 hour 35 minutes.",
    ],
)
def test_a_duration_in_two_units_is_compared_in_the_unit_asked(reply):
    in_minutes = "A 3-hour exam started 85 minutes ago. How many minutes remain?"
    assert verdict("95", reply, in_minutes) == "equal"
    assert verdict("85", reply, in_minutes) == "not_equal"


def test_a_duration_in_another_unit_decides_against_the_unit_asked():
    in_hours = "The movie lasts 90 minutes. How many hours does it last?"
    assert verdict("1.5", "It lasts 90 minutes.", in_hours) == "equal"
    assert verdict("2", "It lasts 90 minutes.", in_hours) == "not_equal"
    # Without a question the unit of a bare gold is unknown: no verdict rests on a guessed unit.
    assert verdict("1.5", "It lasts 90 minutes.") == "cant_tell"
    # A quantity in another dimension is not the answer to "how many hours".
    runs = "James runs 12 miles a day, 5 days a week, at 10 miles an hour. How many hours does he run a week?"
    assert verdict("6", "He runs 5*12=60 miles a week. That is 360 minutes, i.e. 6 hours.", runs) == "equal"


# ---- 5. a sum in a long closing sentence -----------------------------------------------------------------


def test_a_sum_in_a_long_closing_sentence():
    question = "A lunch costs $12, a drink $9 and a dessert $20. How much does the meal cost?"
    reply = "Adding the three costs together, 12 + 9 + 20 gives a total of 41 dollars."
    assert check_answer("41", reply, question=question, min_confidence="sole").result == "equal"
    assert verdict("20", reply, question) == "not_equal"
    assert verdict("41", "Joe's bag weighs 1000+1600=**2600** grams.".replace("2600", "41")) == "equal"


# ---- 6. two answers, a range, or a hedge -----------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        "The drive is either 300 or about 270 miles.",
        "Answer: 85–90",
        "So the answer is 9 (or 1 under the other reading).",
        "She needs 6 or 7 boxes.",
        "So somewhere between 300 and 310.",
        "Final answer: 300 or 301",
        "He has either 300 apples, or 301 pears.",
        # A range after "about"/"roughly" (with "to" or a hyphen), and "or" inside LaTeX text.
        "The tree is about 300 to 310 feet tall.",
        "The answer is roughly 85-90 cookies.",
        "$\\boxed{6 \\text{ or } 7}$",
        "So she needs around 6 to 7 boxes.",
        # A second value offered without "or", or in a sentence of its own.
        "She has 300 apples, though it could be 301 if she kept the one from yesterday.",
        "She needs 6 boxes, possibly 7.",
        "There are 300 chairs. Or 301, if the teacher's chair counts.",
        "They sold 300 cars, give or take 5.",  # a margin: 295 to 305
    ],
)
def test_several_answers_are_not_equal_even_when_the_gold_is_one_of_them(reply):
    for gold in ("300", "85", "9", "6", "301"):
        comparison = check_answer(gold, reply)
        assert comparison.result == "not_equal", (gold, comparison)
        assert comparison.reason.startswith("several answers") and comparison.method == "hedge"
    # A hedge is decided: hybrid grading does not send it to the LLM.
    assert check_answer("6", reply, min_confidence="sole").result == "not_equal"


@pytest.mark.parametrize(
    "reply",
    [
        "It took 90 minutes, or 1.5 hours.",  # one quantity in two units
        "The difference between 12 and 5 is 7.",
        "She packs 6 or more apples a bag, 4 bags, so 24 apples.",
        "The price rose from 20 to 35 dollars, so it went up by $15.",
        "So 85 - 90 = -5.",
        "She can buy 4 notebooks, or 2 packs of two.",  # the same thing counted in other terms
        "There are 6 teams, or 3 pairs of teams.",
        "The temperature went from about 20 to 35 degrees, a rise of 15 degrees.",
        "She counted from 1 to 100, so she said 100 numbers.",
        "Perhaps surprisingly, she ends up with 24 apples.",
    ],
)
def test_what_is_not_a_hedge(reply):
    for gold in ("90", "7", "24", "15", "-5", "1", "4", "6"):
        assert check_answer(gold, reply).method != "hedge"


# ---- reading the question's ask, and the policy ----------------------------------------------------------


def test_the_question_s_ask_is_read():
    assert read_ask(LENA).noun == "marbles" and read_ask(LENA).dimension == "count"
    assert read_ask("How long will it take to fully charge, in hours?").unit == "hours"
    assert read_ask("Tom bought 3 pens. How much did he pay?").dimension == "money"
    assert read_ask("What is the mean of the results?").dimension is None


def test_a_candidate_counting_other_things_is_set_aside_for_the_one_asked():
    reply = "So Lena has 31 marbles now, and her brother has 9 stickers."
    assert check_answer("31", reply, question=LENA, min_confidence="sole").result == "equal"
    wrong = check_answer("9", reply, question=LENA)
    assert wrong.result == "not_equal" and "9 stickers (unit)" in wrong.reason


def test_every_verdict_names_its_rule_and_the_policy_carries_the_rule_set():
    replies = ["So Lena has 31 marbles now. She began with 50, lost 12 and gave away 7.", "She needs 6 or 7 boxes.",
               "Final answer: 31", "#### 31", "I do not know."]
    for reply in replies:
        comparison = check_answer("31", reply, question=LENA)
        assert comparison.rule in ("closing_statement", "final_answer_line", "gsm8k", "none")
        assert comparison.reason
    assert AnswerPolicy().check("31", replies[0], question=LENA).result == "equal"
    assert AnswerPolicy().params()["rule_set"] != "2026.12.06"  # bumped: these rules change verdicts


def test_latex_money_and_bold_results_read_as_the_equation_s_result():
    question = "Ali had $21. Leila gave him half of her $100. How much does Ali have now?"
    latex = "Leila gave 100/2 = $50 to Ali.\nAli now has $21 + $50 = $\\$$71$."
    assert check_answer("71", latex, question=question, min_confidence="sole").result == "equal"
    assert verdict("50", latex, question) == "not_equal"
    bold = "The candied apples weigh 1600 grams.\nJoe's bag weighs 1000+1600=**2600** grams."
    assert check_answer("2600", bold, min_confidence="sole").result == "equal"
    assert verdict("1600", bold) == "not_equal"


def test_a_question_in_cents_reads_a_bare_gold_in_cents():
    question = "A $24 bottle gives 240 washes. How much does each wash cost, in cents?"
    reply = "Each wash costs 24/240 = $0.10."
    assert verdict("10", reply, question) == "equal"
    assert verdict("12", reply, question) == "not_equal"


def test_a_correction_that_restates_the_question_s_numbers_is_not_a_recap():
    question = "A hall has 44 chairs, and 4 are removed. How many chairs are left?"
    reply = "The total is 40. Wait, I forgot the 4 extra chairs, so the total is 44."
    assert verdict("40", reply, question) != "equal"


def test_a_chat_layout_with_inline_latex_and_bold_steps():
    question = ("Dijana rowed 50 miles. Anis rowed 1/5 times more miles than Dijana. "
                "Calculate the total distance the two of them rowed.")
    reply = ("### Solution\n\n**Step 1:** Anis rowed \\( 1 \\div 5 \\times 50 = 10 \\) more miles than Dijana.\n\n"
             "**Step 2:** Anis covered \\( 50 + 10 = 60 \\) miles.\n\n"
             "**The two of them rowed for \\( 60 + 50 = 110 \\) miles on that day.**\n\n"
             "We used the given values 50 and 1/5.")
    sure = check_answer("110", reply, question=question, min_confidence="sole")
    assert sure.result == "equal"
    assert verdict("60", reply, question) == "not_equal"
    assert verdict("50", reply, question) == "not_equal"


def test_a_closing_sentence_with_the_question_s_numbers_in_other_units_is_an_answer_not_a_recap():
    question = "She has 56 pencils, and each box holds 8 pencils. How many boxes does she need to pack all the pencils?"
    reply = "Number of boxes = 56 / 8 = 7.\n\nShe needs 8 boxes to pack all 56 pencils."
    assert verdict("7", reply, question) == "not_equal"


def test_a_number_word_after_an_equals_sign_is_a_sure_result():
    reply = "First multiply: 3 * 4 = 12.\nThen add six: 12 + 6 = eighteen."
    assert check_answer("18", reply, min_confidence="sole").result == "equal"
    assert check_answer("12", reply, min_confidence="sole").result == "not_equal"


SAM = "Sam reads 12 pages a day. How many days will it take him to read a 180-page book?"


@pytest.mark.parametrize(
    ("question", "reply"),
    [
        (LENA, "Lena now has 31 marbles.\n\nTo double-check: 31 + 12 + 7 = 50. ✓"),
        (LENA, "Lena has **31** marbles left. She started with 50, lost 12, and gave 7 away, so 50 − 12 − 7 = 31."),
        (LENA, "1. Start: 50 marbles\n2. Lost: 12 → 50 − 12 = 38\n3. Gave away: 7 → 38 − 7 = 31\n\n**Lena has 31 marbles now.**"),
        (SAM, "It will take Sam 31 days. Each day he reads 12 pages, and 31 × 12 = 180."),
        (SAM, "## Solution\n\nPages per day: 12\nTotal pages: 180\n\nDays = 180 / 12 = **31**\n\nSo Sam will finish in 31 days."),
    ],
)
def test_a_check_after_the_answer_is_not_the_answer(question, reply):
    # (31 × 12 is not 180: the checker reads what the reply states, not whether its arithmetic holds.)
    assert check_answer("31", reply, question=question, min_confidence="sole").result == "equal"
    assert verdict("50", reply, question) == "not_equal"
    assert verdict("180", reply, question) == "not_equal"


def test_a_step_whose_result_is_a_given_number_is_still_the_answer():
    question = "Mary had 12 oranges. She gave 2 to each of her 3 daughters and 3 to her son. How many are left?"
    reply = "Her three daughters received 3 * 2 = 6 oranges.\nShe gave 6 + 3 = 9 oranges in total.\nShe kept 12 - 9 = 3 oranges."
    assert verdict("3", reply, question) == "equal"
    assert verdict("9", reply, question) == "not_equal"


@pytest.mark.parametrize(
    ("question", "reply", "gold"),
    [  # GSM8K train solutions the first hedge rule misread (found by running it on all 7,473)
        ("A month costs $10, and the annual plan is 20% off. How much do you pay for the annual plan?",
         "A year costs $12 * 10 = $120.\nWith the discount you would pay $120 * (1-20%) = $96 for the annual subscription",
         "96"),
        ("She worked 35 hours in weeks 1 and 2 and 48 hours in weeks 3 and 4. How many more hours in weeks 3 and 4?",
         "Week 1 + Week 2 = 35 + 35 = 70 hours\nWeek 3 + Week 4 = 48 + 48 = 96 hours\n"
         "Subtract Weeks 3-4 from Weeks 1-2 = 96 - 70 = 26", "26"),
        ("A $350 dress sold for $140. What percentage off did she get?",
         "She saved $350 - $140 = $210.\nThat means she saved $210 / $350 = 0.60 or 60% off on the dress.", "60"),
        ("15% of the 3000 cars cost less than $15000 and 40% cost more than $20000. "
         "How many of them cost between $15000 and $20000?",
         "450 + 1200 = 1650 cars are outside the range.\n"
         "Out of 3000 cars, there will then be 3000-1650 = 1350 cars left which cost between $15000 and $20000", "1350"),
        ("He gets $10,000 if he averages 30 or more points a game and $8,000 otherwise. He scored 150 points in "
         "5 games. How much does he get paid for the week?",
         "He averaged 30 points a game because 150 divided by 5 equals 30.\n"
         "He gets paid $10,000 because that's how much he gets if he averages 30 or more points that week.", "10000"),
    ],
)
def test_alternatives_that_are_not_two_answers(question, reply, gold):
    comparison = check_answer(gold, reply, question=question)
    # Not a hedge, so never "not_equal" ("0.60 or 60%" is one value, and stays cant_tell between them).
    assert comparison.method != "hedge" and comparison.result != "not_equal", comparison


def test_a_recap_that_names_the_counted_things_is_still_a_recap():
    question = "Kim has 5 boxes of 12 crayons. She gives away 17 crayons. How many crayons does she have left?"
    reply = "Kim has 43 crayons left. She had 5 boxes of 12 crayons, and gave away 17."
    assert verdict("43", reply, question) == "equal"
    assert verdict("60", reply, question) == "not_equal"


def test_a_share_or_a_count_of_things_is_not_the_measure_asked_for():
    girls = "A class has 30 students. 40% of them are boys. How many girls are in the class?"
    reply = "There are 18 girls, which is 60% of the class."
    assert check_answer("18", reply, question=girls, min_confidence="sole").result == "equal"
    assert verdict("60", reply, girls) == "not_equal"
    janet = "Janet sells the 9 eggs she has left for $2 each. How much in dollars does she make every day?"
    sold = "Therefore, Janet makes $18 every day at the farmers' market, selling 9 eggs at $2 each."
    assert check_answer("18", sold, question=janet, min_confidence="sole").result == "equal"
    # A percent is what "how many percent" asks for.
    share = "40 of the 50 seats are taken. How many percent of the seats are taken?"
    assert verdict("80", "So 40 / 50 = 80% of the seats are taken.", share) == "equal"


def test_a_counterfactual_is_the_answer_when_the_question_asks_what_would_happen():
    question = "Jim has 7 apples. If he had 3 more, how many apples would he have?"
    reply = "He has 7 apples now. If he had 3 more, he would have 7 + 3 = 10 apples."
    assert verdict("10", reply, question) == "equal"
    asked_plainly = "Tickets cost $12 for adults and $8 for children. A family buys 2 adult and 3 child tickets. How much do they pay?"
    after = "They pay $48. Had they bought only adult tickets, it would have been 5 × $12 = $60."
    assert verdict("48", after, asked_plainly) == "equal"
    assert verdict("60", after, asked_plainly) == "not_equal"


# ---- the answer first, then how it was made up ---------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "reply", "gold", "other"),
    [
        # The parts after the answer add up to it.
        ("A farmer has 12 cows and 30 chickens. How many legs do the animals have in total?",
         "The animals have 108 legs in total. The 12 cows have 48 legs and the 30 chickens have 60 legs.", "108", "60"),
        ("Jen buys 3 shirts at $14 each and a hat for $9. How much does she spend?",
         "Jen spends $51 in total. The shirts cost 3 × $14 = $42, and the hat adds $9.", "51", "42"),
        # What there was before, less what went: the answer again.
        ("Olga has 3 bags with 16 candies each. She eats 7. How many candies are left?",
         "Olga has 41 candies left. She had 48 candies before eating 7.", "41", "48"),
        # A subtotal "in all", and the largest value less the others.
        ("Nina baked 4 trays of 18 cookies and gave 25 to her class. How many cookies does she have left?",
         "Nina has **47 cookies** left.\n\nShe made 72 cookies in all (4 trays × 18), then handed out 25.", "47", "72"),
        ("Pedro has $120. He spends 1/4 of it on a game and $35 on shoes. How much money does he have left?",
         "Pedro has $55 left. He spent $30 on the game (a quarter of $120) and $35 on shoes.", "55", "30"),
        # "picked" speaks to the ask's "pick".
        ("Kai picked 14 strawberries, Ana picked 23 and Leo picked 9. How many strawberries did they pick altogether?",
         "They picked **46 strawberries** altogether.\n\nKai's 14, Ana's 23 and Leo's 9 make up that total.", "46", "9"),
        # A last sentence that answers nothing asked (a count of muffins when money is asked, and a price the
        # question gives) does not hide the answer before it.
        ("A bakery sold 45 muffins in the morning and 38 in the afternoon. Each muffin costs $3. "
         "How much money did the bakery make from muffins?",
         "The bakery made $249 from muffins. It sold 45 + 38 = 83 muffins at $3 each.", "249", "83"),
        # "If it were ..., it would ...": what is not the case.
        ("A tank holds 50 liters. It is 40% full. How many liters are in it?",
         "There are 20 liters in the tank. If it were full, it would hold 50 liters, so 30 more liters would fill it.",
         "20", "30"),
    ],
)
def test_the_answer_first_then_its_parts(question, reply, gold, other):
    assert verdict(gold, reply, question) == "equal"
    assert verdict(other, reply, question) == "not_equal"
    assert check_answer(gold, reply, question=question, min_confidence="sole").result == "equal"


@pytest.mark.parametrize(
    ("question", "reply", "gold"),
    [
        # A step on from a first statement is the answer, even when its numbers add up to the first one.
        ("Tom had 50 apples and gave away 30. How many apples does Tom have left?",
         "Tom has 50 apples. He gives away 30 and keeps 20.", "20"),
        ("Jen buys 3 shirts at $14 each and a hat for $9. How much does she spend?",
         "She spends $42 on shirts. With the $9 hat she spends $51.", "51"),
        ("Jen buys 3 shirts at $14 each and a hat for $9. How much does she spend?",
         "She spends $42 on shirts. Adding the $9 hat gives a total of $51.", "51"),
        ("A shop sells pens at $2. Liz buys 6 pens and a $5 notebook. How much does she spend?",
         "Liz spends $12 on pens. The notebook costs $5 more, for $17.", "17"),
        ("Sam has 41 candies and buys 7 more. How many candies does he have now?",
         "Sam has 41 candies left from before. He buys 7 more, making 48.", "48"),
    ],
)
def test_a_step_after_a_first_statement_is_still_the_answer(question, reply, gold):
    # Never refuted by reading the first statement as the answer ("$5 more, for $17" may stay unsure).
    assert verdict(gold, reply, question) != "not_equal"


def test_graders_give_no_credit_for_a_hedge_and_say_why():
    from orca_math.grading import GradingPolicy
    from orca_math.testing import ScriptedChatClient

    asked = []
    grader = ScriptedChatClient(responder=lambda messages: asked.append(messages) or "Final Verdict: Correct")
    question = "A farmer has 12 cows and 30 chickens. How many legs do the animals have in total?"
    for policy in (GradingPolicy(mode="exact"), GradingPolicy(mode="hybrid", model=grader)):
        verdict_ = policy.grade_sync(question=question, reference_answer="108",
                                     student_solution="They have about 100 to 110 legs.")
        assert verdict_.verdict == "Incorrect" and verdict_.method == "exact"
        assert "several answers" in verdict_.analysis and "None" not in verdict_.analysis, verdict_.analysis
    assert asked == []  # a hedge is decided: hybrid grading does not ask the LLM

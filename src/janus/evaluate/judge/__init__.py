"""Stage `judge` (F.2): LLM-as-a-judge on the Multifaceted Bench.

Modules: `responses` (the graded responses), `grading` (absolute grading: requests, verdicts),
`pairwise` (both-order comparisons), `parser` (the strict reading of judge answers), `analysis`
(scores, CIs, health, steerability; no LLM call), `agreement` (between judges, run by the
report), `run` (the stage).

Absolute grading, as the paper did: every response is graded once per rubric (4 per item) in the
Prometheus absolute-grading layout (task description, instruction, response, reference answer,
score rubric; "Feedback: ... [RESULT] N"). F.2 and the official script give the judge no system
message; `judge.include_system_message` adds it (the F.2 setting is off). An item's score is the
mean of its rubric scores; a model's score per Table 2 column is the mean over items; the whole
judging is repeated `judge.repeats` times (sample_index), and the mean over repeats is reported
with the sample std over repeats and a bootstrap 95% CI over bench items (`stats`).

Format: `structured` asks for `rows.AbsoluteJudgement` under its JSON schema; `text` asks for the
paper's text and parses it strictly (`parser`). Either way there is ONE re-ask mechanism:
the parser is each grading step's `parse` (`janus.steps`), which the LLM client calls on every
answer, re-asking a rejected one as a new sample up to `llm.judge.max_invalid_retries` times;
what is still unreadable is "unparsed" (the step runner holds these to `judge.max_failed_fraction`),
counted by reason and kept out of every mean (an item's score is then the mean of its parsed
rubrics; an item with none is "unscored"). An empty model response is not sent to the judge.

Several judges (`judge.judges`, roles in `llm`): the first, the primary, grades everything below
and its numbers are the report's and the scorecard's; every other judge grades the same
responses on their own rubrics (absolute only), each row carrying its judge's role, so that an
LLM-free step can compare judges (the report's agreement, the scorecard's same-judge section).
A judge's position in the list is folded into its samples' index, so a second judge that is the
same model as the first draws its own samples instead of reading the first one's from the cache.

Also here: pairwise comparison in both orders (`winrate`; the judge sees the system message
there, as the paper's human raters did in F.1), judge health (repeat agreement,
position flips, score-length correlation, the Table 8 gap with its CI) and steerability: each
system-condition response is graded against the rubrics of another system message of the same
instruction; matched minus mismatched says how much the system message changed the answer.
"""

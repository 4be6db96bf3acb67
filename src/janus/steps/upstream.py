"""What the registered steps read besides their rows, for the forecast (`janus.forecast`): the
upstream stages' outputs where they exist (counts and requests exact), else stand-ins whose mean
size is scaled to the count the params imply (seed sets from the taxonomy's keywords, hand-written
system messages, instructions from the filter's output or a stand-in text).

Nothing here calls a model or writes a file.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

from janus.config.params import Params
from janus.steps.registry import RowPlan

# Used where the filter has not run: an instruction of this text stands in for each of them.
STAND_IN_INSTRUCTION = (
    "Explain, step by step and with a short worked example, how to choose between two "
    "approaches to a common everyday problem, and what trade-offs a beginner should weigh "
    "before deciding."
)
STAND_IN_SAMPLE = 50  # stand-in requests rendered to estimate a mean request size
# what a judged model's answer is taken to be where no responses exist yet (about 300 tokens)
STAND_IN_RESPONSE = " ".join(["A clear, well organised answer that follows the request."] * 25)
# rows of the published Multifaceted-Bench (kaist-ai/Multifaceted-Bench; C.1's 945 after the
# human filtering), counted where bench.published is set and the bench stage has not run
PUBLISHED_BENCH_ROWS = 921


def stand_in_seed_sets(taxonomy, config) -> list[dict[str, Any]]:
    """Seed sets assembled from the taxonomy's keywords, each described by a stand-in sentence."""
    from janus.data.seeds import assemble_seed_sets, select_keywords

    expanded = [
        {**item, "description": f"Prefers {item['preference'].lower()} in the response."}
        for item in select_keywords(taxonomy, config)
    ]
    return assemble_seed_sets(expanded, taxonomy.keys, config.num_seed_sets, config.seed)


class Upstream:
    """The inputs of the data steps under `params` in the repository at `root`; `outputs`: stage
    -> its output path, only those to be trusted (made with these params)."""

    def __init__(self, params: Params, root: Path, outputs: dict[str, str]):
        self.params, self.root, self.outputs = params, root, outputs

    def existing(self, stage: str) -> Path | None:
        path = self.outputs.get(stage)
        return self.root / path if path and (self.root / path).exists() else None

    @cached_property
    def taxonomy(self):
        from janus.data.taxonomy import load_taxonomy

        return load_taxonomy(self.root / self.params.expand_seeds.taxonomy_path)

    @cached_property
    def examples(self) -> list[dict[str, Any]]:
        """The hand-written system-message pool."""
        from janus.data.system_messages import load_examples

        return load_examples(
            self.root / self.params.system_messages.examples_path, self.taxonomy.keys
        )

    @cached_property
    def seed_sets(self) -> list[dict[str, Any]]:
        """expand_seeds' output, else stand-ins."""
        from janus.data.common import read_preference_set_rows

        path = self.existing("expand_seeds")
        if path:
            return read_preference_set_rows(path, self.taxonomy.keys)[0]
        return stand_in_seed_sets(self.taxonomy, self.params.expand_seeds)

    # -- the rows each data step reads -------------------------------------------------------

    def keywords(self) -> RowPlan:
        from janus.data.seeds import select_keywords

        rows = select_keywords(self.taxonomy, self.params.expand_seeds)
        return RowPlan(rows, len(rows), True, "taxonomy keywords")

    @cached_property
    def instructions(self) -> RowPlan:
        """The filter's instructions (up to preference_sets.max_instructions); exact only when
        the seed sets are real too."""
        from janus.io import read_jsonl

        config = self.params.preference_sets
        path = self.existing("filter")
        if path:
            rows = read_jsonl(path)
            if config.max_instructions is not None:
                rows = rows[: config.max_instructions]
            exact = self.existing("expand_seeds") is not None
            basis = "filter output" + (
                "" if exact else "; seed sets stand in (expand_seeds not run)"
            )
            return RowPlan(rows if exact else rows[:STAND_IN_SAMPLE], len(rows), exact, basis)
        count = self.params.filter.total
        if config.max_instructions is not None:
            count = min(count, config.max_instructions)
        basis = f"filter not run: filter.total={self.params.filter.total}, stand-in instructions"
        rows = [
            {"instruction_id": f"stand-in-{i}", "instruction": STAND_IN_INSTRUCTION}
            for i in range(STAND_IN_SAMPLE)
        ]
        return RowPlan(rows, count, False, basis)

    def _sets_expected(self) -> int:
        """Preference sets the instructions make, every answer assumed valid."""
        return self.instructions.count * self.params.preference_sets.sets_per_instruction

    def preference_set_rows(self) -> RowPlan:
        """preference_sets' output, else stand-ins: one message per expected set."""
        from janus.data.common import read_preference_set_rows

        path = self.existing("preference_sets")
        if path:
            rows, _ = read_preference_set_rows(path)
            return RowPlan(rows, len(rows), True, "preference_sets output")
        sample, seed_sets = self.instructions.rows, self.seed_sets
        sets_per_instruction = self.params.preference_sets.sets_per_instruction
        rows = [
            {
                **(sample[i % len(sample)] if sample else {}),
                "instruction_id": f"stand-in-{i}",
                "set_index": i % sets_per_instruction,
                "preference_set": seed_sets[i % len(seed_sets)]["preference_set"],
            }
            for i in range(STAND_IN_SAMPLE)
        ]
        basis = "preference_sets not run: seed sets stand in, one message per set"
        return RowPlan(rows, self._sets_expected(), False, basis)

    def system_message_rows(self) -> RowPlan:
        """system_messages' output, else stand-ins with the hand-written system messages."""
        from janus.io import read_jsonl

        path = self.existing("system_messages")
        if path:
            rows = read_jsonl(path)
            return RowPlan(rows, len(rows), True, "system_messages output")
        sample, examples = self.instructions.rows, self.examples
        rows = [
            {
                "instruction_id": f"stand-in-{i}",
                "set_index": 0,
                "instruction": (sample[i % len(sample)] if sample else {}).get(
                    "instruction", STAND_IN_INSTRUCTION
                ),
                "system": examples[i % len(examples)]["system"],
            }
            for i in range(STAND_IN_SAMPLE)
        ]
        basis = "system_messages not run: hand-written system messages stand in"
        return RowPlan(rows, self._sets_expected(), False, basis)

    # -- bench-shaped rows (the bench, the judge and the API baselines) -----------------------

    def stand_in_bench_rows(self, count: int = STAND_IN_SAMPLE) -> list[dict[str, Any]]:
        """Bench-shaped rows: hand-written system messages, stand-in instructions and answers."""
        examples = self.examples
        rubric = {
            "criteria": "Does the response follow the stated preference?",
            "score_descriptions": {
                str(n): "A response that follows the preference to this degree."
                for n in range(1, 6)
            },
        }
        return [
            {
                "id": f"stand-in-{i}",
                "instruction_id": f"stand-in-{i}",
                "set_index": 0,
                "source": "stand-in",
                "prompt": STAND_IN_INSTRUCTION,
                "instruction": STAND_IN_INSTRUCTION,
                "system": examples[i % len(examples)]["system"],
                "preference_set": examples[i % len(examples)]["preference_set"],
                "reference_answer": STAND_IN_RESPONSE,
                "rubrics": [rubric] * len(self.taxonomy.keys),
            }
            for i in range(count)
        ]

    # -- the evaluation steps' rows ------------------------------------------------------------
    # Their inputs are model outputs (bench, responses, generations): always stand-ins (a sample
    # of STAND_IN_SAMPLE rows) scaled to the count the params imply, or to the bench's output.

    def bench_size(self) -> int:
        """The bench's rows as its params imply them."""
        config = self.params.bench
        if config.published is not None:
            return PUBLISHED_BENCH_ROWS
        sources = sum(source.enabled for source in config.sources.values())
        return sources * config.instructions_per_source * config.system_messages_per_instruction

    def _bench_plan(self, count: int, what: str) -> RowPlan:
        basis = f"{count} {what}; stand-in texts"
        return RowPlan(self.stand_in_bench_rows(), count, False, basis)

    def bench_instructions(self) -> RowPlan:
        """bench.preference_sets: one row per instruction (its fan-out: the system messages)."""
        per = self.params.bench.system_messages_per_instruction
        return self._bench_plan(self.bench_size() // per, "bench instructions")

    def bench_rows(self) -> RowPlan:
        return self._bench_plan(self.bench_size(), "bench rows")

    @cached_property
    def answered(self) -> tuple[int, str]:
        """The bench rows each model answers (the bench's output, else its params), and whence."""
        path = self.existing("bench")
        if path is not None:
            from janus.evaluate.rows import read_bench

            rows, basis = len(read_bench(path)[0]), "bench output"
        elif self.params.bench.published is not None:
            rows = self.bench_size()
            basis = f"bench not run: the published bench's {PUBLISHED_BENCH_ROWS} rows"
        else:
            rows, basis = self.bench_size(), "bench not run: its params"
        if self.params.infer.max_items is not None:
            rows = min(rows, self.params.infer.max_items)
        return rows, basis

    def _stand_in_responses(self, rows: list[dict[str, Any]], models: list[str]):
        from janus.evaluate.judge.responses import CONDITIONS, Response

        return [
            Response(model, condition, row["id"], STAND_IN_RESPONSE)
            for model in models
            for condition in CONDITIONS
            for row in rows
        ]

    def grading_rows(self) -> RowPlan:
        """judge: every model's stand-in response in both conditions, per rubric and repeat
        (`absolute_tasks`), and the steerability tasks against another row's rubrics."""
        from janus.evaluate.judge.grading import absolute_tasks

        judge, models = self.params.judge, self.params.infer.model_names()
        rows, basis = self.answered

        def tasks(bench_rows: list[dict[str, Any]], names: list[str]):
            bench = {row["id"]: row for row in bench_rows}
            ids = list(bench)
            partners = {ids[i]: ids[(i + 1) % len(ids)] for i in range(len(ids))}
            return absolute_tasks(self._stand_in_responses(bench_rows, names), bench, judge,
                                  partners), bench  # fmt: skip

        counted, _ = tasks(self.stand_in_bench_rows(rows), list(models))
        sample, bench = tasks(self.stand_in_bench_rows(), ["stand-in"])
        grading = [(t, bench[t.response.id], bench[t.rubric_of]) for t in sample]
        basis += (
            f"; {len(models)} model(s) x 2 conditions x rubrics x {judge.repeats} repeats"
            f" (+ steerability x {judge.steerability_repeats}); stand-in answers"
        )
        return RowPlan(grading, len(counted), False, basis)

    def pairwise_rows(self) -> RowPlan:
        """judge.pairwise: each configured pair on every row, per repeat, in both orders."""
        from janus.evaluate.judge.pairwise import Comparison
        from janus.evaluate.judge.responses import Response

        judge, (rows, _) = self.params.judge, self.answered
        sample = [
            (Comparison("stand-in", "opponent", row["id"], 0,
                        Response("stand-in", "system", row["id"], STAND_IN_RESPONSE),
                        Response("opponent", "system", row["id"], STAND_IN_RESPONSE)),
             x_first, row)
            for row in self.stand_in_bench_rows()
            for x_first in (True, False)
        ]  # fmt: skip
        count = len(judge.pairwise) * rows * judge.repeats * 2
        basis = f"{len(judge.pairwise)} pair(s) x {rows} rows x {judge.repeats} repeats x 2 orders"
        return RowPlan(sample, count, False, basis)

    def toxicity_texts(self) -> RowPlan:
        """toxicity.llm: every generation of every model (distinct ones are fewer)."""
        config = self.params.toxicity
        models = len(config.models) + len(config.hub_models)
        count = models * config.max_prompts * config.generations_per_prompt
        text = " ".join(STAND_IN_RESPONSE.split()[: config.sampling.max_tokens])
        basis = (
            f"{models} model(s) x {config.max_prompts} prompts x {config.generations_per_prompt}"
            " generations; stand-in texts"
        )
        return RowPlan([(i, text) for i in range(STAND_IN_SAMPLE)], count, False, basis)

    def endpoint_prompts(self) -> RowPlan:
        """infer_api: every bench row in both conditions (stand-in prompts)."""
        from janus.evaluate.judge.responses import CONDITIONS
        from janus.infer.responses import bench_prompts

        rows, _ = self.answered
        sample = bench_prompts(self.stand_in_bench_rows(), list(CONDITIONS))
        basis = f"{rows} bench rows x {len(CONDITIONS)} conditions; stand-in prompts"
        return RowPlan(sample, rows * len(CONDITIONS), False, basis)

    def helpfulness_questions(self) -> RowPlan:
        """helpfulness.endpoint: the first turn of every benchmark's prompts (MT-Bench's
        second turns are not counted)."""
        from janus.evaluate.helpfulness_answering import Answer
        from janus.evaluate.helpfulness_questions import Question

        config = self.params.helpfulness
        count = sum(b.max_prompts or 0 for b in config.benchmarks.values())
        sample = [
            (Question(f"stand-in-{i}", [STAND_IN_INSTRUCTION], None), Answer())  # type: ignore[arg-type]
            for i in range(STAND_IN_SAMPLE)
        ]
        return RowPlan(sample, count, False, f"{count} helpfulness prompts; stand-in questions")

"""Stage `bench` (C.1): the Multifaceted Bench.

Instructions come from the held-out benchmarks (AlpacaEval 2.0, FLASK, Koala, MT-Bench,
Self-Instruct; local files or hub datasets). Any instruction that the training data also holds
(normalised exact match) or that more than one benchmark holds is excluded, then
`instructions_per_source` are sampled per benchmark. Each instruction gets N system messages made
exactly as the training ones are (a preference set, then a system message written from it, with
the data stage's own functions and templates), one reference answer per system message (the gold
response step), and one 1-5 score rubric per preference dimension (one structured call returns
all of them).

Or, with `bench.published` set, the published Multifaceted-Bench (hub or a local file) is
imported instead: validated row by row (`rows.PublishedBenchRow`), given a stable content-derived
id, bad rows counted by reason.

Either way rows are written in the published layout (`rows.BenchRow`: `rubrics` as
``{criteria, score_descriptions: {"1".."5"}}``) plus `id`, `instruction_id` and `benchmark`, the
Table 2 column its fine-grained `source` counts in (the mapping is a data file,
`bench.source_columns_path`). A row that misses a field, or a rubric that misses a score level,
is counted and dropped, never passed on half-made. The train-test ROUGE-L of system messages
(Figure 5) is measured here.

Modules: `selection` (instructions: load, exclude, sample), `columns` (source -> Table 2
column), `published` (the published bench's import), `generation` (the teacher's preference sets,
system messages, reference answers and rubrics), `build` (the stage).
"""

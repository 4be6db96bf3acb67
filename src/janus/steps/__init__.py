"""LLM steps: each LLM stage declared once (`janus.steps.base.Step`), run by one runner
(`janus.steps.runner.run_step`), listed in one registry (`janus.steps.registry`) that the forecast
walks. See the modules' docstrings for the API; this package file holds no code, so importing a
step pulls in only the modules it names."""

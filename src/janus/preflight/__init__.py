"""`python -m janus preflight`: what a run needs, checked in seconds, before anything is paid.

Each check is a row (area, what, status, detail); a FAIL row makes the command exit 1, a warn
row does not. Nothing is sent that costs money: the served check reads each endpoint's model
list (`GET /v1/models`), and only where an endpoint has no list does it send one request of one
token (self-hosted servers: vLLM, `transformers serve`).

- served: every model an LLM role (`llm.<role>`), endpoint row (`infer.endpoints.<name>`) or
  fleet member (each `base_url` of a list) will be asked is in its endpoint's list;
- key: each API-key variable a run needs is set (its value is never printed);
- gpu: CUDA has as many devices as the launch configuration asks for
  (`train.common.accelerate_config`, the engines' `tensor_parallel_size`);
- input: every file a stage of dvc.yaml reads exists, or a stage (or a .dvc file) makes it;
- hub: every hub dataset (`hub:owner/name`) and model (`hub_id`, or a `model` with a
  `revision`) resolves at its revision (offline, `HF_HUB_OFFLINE=1`: is in the local HF
  cache); an unpinned revision (a branch such as `main`, or none) is a warn row;
- disk: free space for the checkpoints training writes (parameters x bytes per parameter x
  checkpoints, from the base model's config);
- tiktoken: its BPE file is on disk for OpenAI models (else token counts are estimated).

The checks are grouped by what they check: `endpoints` (served, key, tiktoken), `gpus`,
`inputs`, `hub`, `disk`; `common` holds the row type; `run` runs them all (the command);
`stage` holds what a stage calls.

Stages call `janus.preflight.stage.before_stage(params, *keys)` with the params keys that concern them (the judge:
`llm.judge`; training: `train.common.accelerate_config`); it runs only those checks, sends
only model-list requests, and raises `PreflightFailed` naming each failing row.
"""

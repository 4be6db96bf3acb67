"""The params schema, one module per params section (`janus.config.judge`, ...) over a small core
(`janus.config.common`: Section, ConfigError, `load_sections`), and the whole `Params` in
`janus.config.params`. A stage imports only the section modules it reads, so a change to one
section does not rerun the stages of the others.

`from janus.config import load_params` (the whole schema, for tools and checks outside the
pipeline) is looked up on access, never on import: importing a section loads no other."""

import importlib


def __getattr__(name: str):
    if name == "load_params":
        return importlib.import_module("janus.config.params").load_params
    raise AttributeError(f"module 'janus.config' has no attribute {name!r}")

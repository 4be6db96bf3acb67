"""The params schema, one module per params section (`janus.config.judge`, ...) over a small core
(`janus.config.common`: Section, ConfigError, `load_sections`), and the whole `Params` in
`janus.config.params`. Nothing is imported here: a stage that imports one section module must not
depend on the others."""

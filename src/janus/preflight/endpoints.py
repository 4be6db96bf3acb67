"""Checks of the LLM endpoints the params name: each API key a run needs is set, each model is
served (the endpoint's model list, or one one-token request), and tiktoken's BPE file is on disk
for OpenAI models."""

from __future__ import annotations

import os
from collections.abc import Iterable

from janus.config.llm import LLMConfig
from janus.preflight.common import FAIL, OK, SKIP, WARN, Check

LIST_TIMEOUT_S = 10.0


def _urls(config: LLMConfig) -> list[str]:
    from janus.llm.openai_backend import DEFAULT_BASE_URL

    return [(url or DEFAULT_BASE_URL).rstrip("/") for url in config.base_urls()]


def _needs_key(config: LLMConfig) -> bool:
    """api.openai.com needs a key; self-hosted servers take none (the client sends a dummy)."""
    return None in config.base_urls()


def _model_list(url: str, key: str | None) -> tuple[set[str] | None, str | None]:
    """(served model ids, None), (None, None) when the endpoint has no list, or (None, error)."""
    import openai

    client = openai.OpenAI(
        api_key=key or "unused", base_url=url, max_retries=0, timeout=LIST_TIMEOUT_S
    )
    try:
        return {model.id for model in client.models.list()}, None
    except (openai.AuthenticationError, openai.PermissionDeniedError) as error:
        return None, f"the key was refused ({type(error).__name__}, HTTP {error.status_code})"
    except openai.APIStatusError as error:
        if error.status_code in (404, 405, 501):
            return None, None
        return None, f"the model list answered HTTP {error.status_code}"
    except openai.APIConnectionError as error:
        return None, f"unreachable ({type(error).__name__})"
    finally:
        client.close()


def _one_token(url: str, key: str | None, model: str) -> str | None:
    """One request of one token, for an endpoint without a model list: None if the model
    answered (or refused only the request's parameters), else why not."""
    import openai

    client = openai.OpenAI(
        api_key=key or "unused", base_url=url, max_retries=0, timeout=LIST_TIMEOUT_S
    )
    try:
        client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "ping"}], max_tokens=1
        )
        return None
    except openai.NotFoundError:
        return f"{model!r} is not served (HTTP 404 to a one-token request)"
    except openai.BadRequestError:
        return None  # the model exists; it disliked a parameter of the probe
    except openai.APIStatusError as error:
        return f"a one-token request answered HTTP {error.status_code}"
    except openai.APIConnectionError as error:
        return f"unreachable ({type(error).__name__})"
    finally:
        client.close()


def key_checks(entries: Iterable[tuple[str, LLMConfig]]) -> list[Check]:
    rows = []
    for key, config in entries:
        if config.backend != "openai":
            continue
        variable = config.api_key_env
        if os.environ.get(variable):
            rows.append(Check("key", f"{key}.api_key_env", OK, f"${variable} is set"))
        elif _needs_key(config):
            rows.append(
                Check(
                    "key",
                    f"{key}.api_key_env",
                    FAIL,
                    f"${variable} is not set ({_urls(config)[0]})",
                )
            )
        else:
            rows.append(Check("key", f"{key}.api_key_env", OK, "self-hosted: no key needed"))
    return rows


def served_checks(entries: Iterable[tuple[str, LLMConfig]], probe: bool = True) -> list[Check]:
    """One row per (params key, endpoint): is the model in the endpoint's list? Each endpoint's
    list is read once. `probe`: where there is no list, send one one-token request."""
    rows = []
    lists: dict[tuple[str, str | None], tuple[set[str] | None, str | None]] = {}
    for key, config in entries:
        if config.backend != "openai":
            continue
        secret = os.environ.get(config.api_key_env)
        for url in _urls(config):
            what = f"{key}.model" + (f" @ {url}" if len(config.base_urls()) > 1 else "")
            if not secret and _needs_key(config):
                rows.append(Check("served", what, SKIP, f"not asked: ${config.api_key_env} unset"))
                continue
            if (url, secret) not in lists:
                lists[(url, secret)] = _model_list(url, secret)
            served, error = lists[(url, secret)]
            if error is not None:
                rows.append(Check("served", what, FAIL, f"{url}: {error}"))
            elif served is not None:
                if config.model in served:
                    rows.append(Check("served", what, OK, f"{config.model} is served by {url}"))
                else:
                    rows.append(
                        Check(
                            "served",
                            what,
                            FAIL,
                            f"{config.model!r} is not in the model list of {url} "
                            f"({len(served)} models); set {key}.model to one it serves",
                        )
                    )
            elif probe:
                problem = _one_token(url, secret, config.model)
                status, detail = (
                    (OK, f"{config.model} answered a one-token request")
                    if (problem is None)
                    else (FAIL, f"{url}: {problem}")
                )
                rows.append(Check("served", what, status, detail))
            else:
                rows.append(Check("served", what, SKIP, f"{url} has no model list"))
    return rows


def tiktoken_checks(entries: Iterable[tuple[str, LLMConfig]]) -> list[Check]:
    from janus.llm.pricing import TIKTOKEN_HINT, tiktoken_encoding_on_disk

    rows = []
    for key, config in entries:
        openai_model = config.backend == "openai" and (
            config.provider == "openai" or None in config.base_urls()
        )
        if not openai_model:
            continue
        encoding = tiktoken_encoding_on_disk(config.model)
        if encoding is not None:
            rows.append(Check("tiktoken", f"{key}.model", OK, f"{encoding.name} on disk"))
        else:
            rows.append(
                Check("tiktoken", f"{key}.model", WARN, f"BPE file not cached: {TIKTOKEN_HINT}")
            )
    return rows

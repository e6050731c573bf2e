"""A local folder as a datasource."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from stat import S_ISDIR, S_ISREG

from datapool.storage.base import (
    InvalidObjectKey,
    ObjectInfo,
    ObjectNotFound,
    Store,
    StoreNotFoundError,
    check_range,
)
from datapool.storage.oserrors import store_error

# Temporary files are written beside their target so that rename/link stay on
# one filesystem; listings skip them.
_TMP_MARK = ".datapool-tmp-"


class LocalStore(Store):
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()

    def describe(self) -> str:
        return f"local folder {self.root}"

    def _path(self, key: str) -> Path:
        if not key or key.startswith("/") or any(part in ("", ".", "..") for part in key.split("/")):
            raise InvalidObjectKey(f"invalid object key {key!r} in {self.describe()}")
        return self.root / key

    @staticmethod
    def _info(key: str, st: os.stat_result) -> ObjectInfo:
        # Like nginx's etag: changes whenever the file is rewritten or replaced.
        return ObjectInfo(
            key=key, size=st.st_size, etag=f"{st.st_mtime_ns:x}-{st.st_size:x}", modified_unix=st.st_mtime
        )

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Files under `prefix` in key order. Entries that cannot be read (a folder without
        permission, a symlink loop or one to nothing, an unreadable file) are listed with
        `unreadable` set, so a run skips them with that reason instead of failing."""
        if not self.root.is_dir():
            raise StoreNotFoundError(f"{self.describe()} does not exist or is not a folder")
        st = self.root.stat()
        for obj in self._walk(self.root, "", prefix, frozenset({(st.st_dev, st.st_ino)})):
            if obj.key.startswith(prefix):  # an unreadable folder on the way to `prefix` is not in it
                yield obj

    def _walk(
        self, folder: Path, rel: str, prefix: str, ancestors: frozenset[tuple[int, int]]
    ) -> Iterator[ObjectInfo]:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except FileNotFoundError:
            return
        except OSError as e:
            if not rel:  # the datasource itself: not a file to skip
                raise store_error(e, "listing", folder, self.describe()) from None
            yield ObjectInfo(rel, 0, "", unreadable=f"the folder cannot be listed: {e.strerror}")
            return
        # Key order: "a/b" sorts by the full key, so visit names in the order their keys sort.
        keyed = sorted(((rel + e.name + ("/" if _is_dir(e) else ""), e) for e in entries), key=lambda t: t[0])
        for key, entry in keyed:
            if _TMP_MARK in entry.name or not (key.startswith(prefix) or prefix.startswith(key)):
                continue
            try:
                st = entry.stat()  # follows symlinks
            except FileNotFoundError:
                if entry.is_symlink():
                    yield ObjectInfo(key, 0, "", unreadable="a symbolic link to nothing")
                continue  # otherwise: deleted between listing and stat
            except OSError as e:  # ELOOP: a symlink loop
                yield ObjectInfo(key, 0, "", unreadable=f"cannot be read: {e.strerror}")
                continue
            if S_ISDIR(st.st_mode):
                folder_id = (st.st_dev, st.st_ino)
                if folder_id in ancestors:
                    # A symlink back to a folder above it: walking it would never end.
                    yield ObjectInfo(key, 0, "", unreadable="a symbolic link loop (a folder inside itself)")
                else:
                    yield from self._walk(Path(entry.path), key, prefix, ancestors | {folder_id})
            elif S_ISREG(st.st_mode) and key.startswith(prefix):
                if os.access(entry.path, os.R_OK):
                    yield self._info(key, st)
                else:
                    yield ObjectInfo(key, 0, "", unreadable="cannot be read: permission denied")

    def stat(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise store_error(e, "reading", path, self.describe()) from None
        return self._info(key, st)

    def read(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise ObjectNotFound(f"object {key!r} not found in {self.describe()}") from None
        except OSError as e:
            raise store_error(e, "reading", path, self.describe()) from None

    def read_range(self, key: str, start: int, end: int | None = None) -> bytes:
        check_range(start, end)
        path = self._path(key)
        try:
            with open(path, "rb") as f:
                f.seek(start)
                return f.read(-1 if end is None else end - start)
        except FileNotFoundError:
            raise ObjectNotFound(f"object {key!r} not found in {self.describe()}") from None
        except OSError as e:
            raise store_error(e, "reading", path, self.describe()) from None

    def _write_temp(self, path: Path, data: bytes) -> Path:
        tmp = path.with_name(f"{path.name}{_TMP_MARK}{uuid.uuid4().hex}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            # A full disk must not also leave a partial temporary file behind.
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise store_error(e, "writing", path, self.describe()) from None
        return tmp

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        tmp = self._write_temp(path, data)
        try:
            os.replace(tmp, path)
        except OSError as e:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise store_error(e, "writing", path, self.describe()) from None

    def put_if_absent(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        tmp = self._write_temp(path, data)
        try:
            # link() fails if the name exists: the only atomic create-if-absent a POSIX
            # filesystem offers for a file whose content is already complete.
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        except OSError as e:
            raise store_error(e, "writing", path, self.describe()) from None
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as e:
            raise store_error(e, "deleting", path, self.describe()) from None

    @contextlib.contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound(f"object {key!r} not found in {self.describe()}")
        yield path


def _is_dir(entry: os.DirEntry[str]) -> bool:
    """Like `entry.is_dir()`, but False for a symlink loop, where is_dir raises ELOOP."""
    try:
        return entry.is_dir()
    except OSError:
        return False

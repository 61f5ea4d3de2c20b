"""Object storage behind one small interface: a local directory or an S3 prefix.

The landing zone, the warehouse and the model store all sit on this, so a deployment moves
from a laptop to S3 by changing a URL (``data/warehouse`` -> ``s3://bucket/warehouse``).
Writes are atomic on both: a local write goes to a temporary file that is renamed into
place; an S3 PUT is atomic by the service's semantics.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class StoredObject:
    """One object in a listing. ``etag`` identifies the content version of the key."""

    key: str
    size: int
    etag: str
    last_modified: datetime


class ObjectStore(Protocol):
    url: str

    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def head(self, key: str) -> StoredObject | None: ...
    def list(self, prefix: str) -> Iterator[StoredObject]: ...
    def refused(self, prefix: str) -> list[tuple[str, str]]: ...
    def list_level(self, prefix: str) -> tuple[list[str], list[str]]: ...
    def delete(self, key: str) -> None: ...
    def delete_prefix(self, prefix: str) -> None: ...
    def uri(self, key: str) -> str: ...


class LocalObjectStore:
    """A directory tree; keys are relative POSIX paths below ``root``."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self.url = str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / key

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _inside(self, path: Path) -> bool:
        return path.resolve().is_relative_to(self.root)

    def get(self, key: str) -> bytes:
        path = self._path(key)
        if not self._inside(path):  # a symlink or ".." out of the root: never read
            raise KeyError(f"{self.uri(key)} leads outside {self.root}: not read")
        try:
            return path.read_bytes()
        except FileNotFoundError as error:
            raise KeyError(f"{self.uri(key)} does not exist") from error

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def head(self, key: str) -> StoredObject | None:
        path = self._path(key)
        if not path.is_file():
            return None
        return self._stored(path)

    def _stored(self, path: Path) -> StoredObject:
        stat = path.stat()
        return StoredObject(
            key=path.relative_to(self.root).as_posix(),
            size=stat.st_size,
            etag=f"{stat.st_mtime_ns:x}-{stat.st_size:x}",
            last_modified=datetime.fromtimestamp(stat.st_mtime, tz=timezone.utc),
        )

    def _walk(self, prefix: str) -> tuple[list[Path], list[tuple[str, str]]]:
        """Files under ``prefix`` and the symlinks refused there, as (key, reason).

        Symlinked directories are never followed; a symlinked file is read only when it
        resolves to a file inside the root. Nothing outside the root is ever listed.
        """
        # "" is the root itself; "a/b" lists the folder "a/" and keeps the keys starting "a/b".
        whole_folder = not prefix or prefix.endswith("/")
        base = self._path(prefix) if whole_folder else self._path(prefix).parent

        def key(path: Path) -> str:
            return path.relative_to(self.root).as_posix()

        if not base.is_dir():
            return [], []
        if base.resolve() != base:  # the prefix itself goes through a symlinked directory
            return [], [(prefix, "symlinked directory: not followed")]
        files: list[Path] = []
        refused: list[tuple[str, str]] = []
        for folder, dirs, names in os.walk(base):  # followlinks=False
            here = Path(folder)
            for name in dirs:
                if (here / name).is_symlink():
                    refused.append((key(here / name), "symlinked directory: not followed"))
            for name in names:
                path = here / name
                if name.startswith(".") and name.endswith(".tmp"):
                    continue
                if not path.is_symlink():
                    files.append(path)
                elif not self._inside(path):
                    refused.append((key(path), "symlink to outside the landing zone: not read"))
                elif not path.is_file():
                    refused.append((key(path), "symlink to no file: not read"))
                else:
                    files.append(path)
        files = [f for f in files if key(f).startswith(prefix)]
        refused = [r for r in refused if r[0].startswith(prefix)]
        return sorted(files, key=key), sorted(refused)

    def list(self, prefix: str) -> Iterator[StoredObject]:
        """Objects whose key starts with ``prefix``, in key order (as S3 lists them)."""
        for path in self._walk(prefix)[0]:
            try:
                yield self._stored(path)
            except FileNotFoundError:
                continue  # deleted since the directory was read (a concurrent clean-up)

    def refused(self, prefix: str) -> list[tuple[str, str]]:
        """(key, reason) of the entries under ``prefix`` that are not listed (symlinks)."""
        return self._walk(prefix)[1]

    def list_level(self, prefix: str) -> tuple[list[str], list[str]]:
        """(file keys, folder prefixes) directly under the folder ``prefix`` (ending in
        ``/``), like an S3 listing with ``Delimiter="/"``. Names only: nothing is followed."""
        base = self._path(prefix)
        if not base.is_dir() or base.resolve() != base:
            return [], []
        files, folders = [], []
        with os.scandir(base) as entries:
            for entry in entries:
                if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    folders.append(f"{prefix}{entry.name}/")
                else:
                    files.append(f"{prefix}{entry.name}")
        return sorted(files), sorted(folders)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        for stored in list(self.list(prefix)):
            self.delete(stored.key)

    def uri(self, key: str) -> str:
        return str(self._path(key))


class S3ObjectStore:
    """Keys below ``s3://bucket/prefix`` through a boto3 client (credentials: the AWS chain)."""

    def __init__(self, client: Any, bucket: str, prefix: str = ""):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")

    def _key(self, key: str) -> str:
        return self.prefix + key

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def get(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except self.client.exceptions.NoSuchKey as error:
            raise KeyError(f"{self.uri(key)} does not exist") from error
        return response["Body"].read()

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def head(self, key: str) -> StoredObject | None:
        from botocore.exceptions import ClientError

        try:
            response = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return StoredObject(
            key=key,
            size=int(response["ContentLength"]),
            etag=response["ETag"].strip('"'),
            last_modified=response["LastModified"],
        )

    def list(self, prefix: str) -> Iterator[StoredObject]:
        """Every object under ``prefix``: follows continuation tokens past 1,000 keys."""
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
            for item in page.get("Contents", []):
                yield StoredObject(
                    key=item["Key"][len(self.prefix) :],
                    size=int(item["Size"]),
                    etag=item["ETag"].strip('"'),
                    last_modified=item["LastModified"],
                )

    def refused(self, prefix: str) -> list[tuple[str, str]]:
        """S3 has no symlinks: every key is listed."""
        return []

    def list_level(self, prefix: str) -> tuple[list[str], list[str]]:
        """(keys, common prefixes) directly under ``prefix``: ``Delimiter="/"``, paginated."""
        files: list[str] = []
        folders: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix), Delimiter="/"):
            files += [item["Key"][len(self.prefix) :] for item in page.get("Contents", [])]
            folders += [p["Prefix"][len(self.prefix) :] for p in page.get("CommonPrefixes", [])]
        return files, folders

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def delete_prefix(self, prefix: str) -> None:
        keys = [{"Key": self._key(obj.key)} for obj in self.list(prefix)]
        for start in range(0, len(keys), 1000):
            self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": keys[start : start + 1000], "Quiet": True}
            )

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"


def split_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> (bucket, "some/prefix")."""
    rest = url.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ValueError(f"not an S3 URL with a bucket: {url!r}")
    return bucket, prefix.strip("/")


def open_object_store(url: str, s3_client_factory: Any = None) -> ObjectStore:
    """A store for ``url``: ``s3://…`` needs a client factory; anything else is a local path."""
    if url.startswith("s3://"):
        if s3_client_factory is None:
            raise ValueError(f"{url} is on S3 but no S3 client was configured")
        bucket, prefix = split_s3_url(url)
        return S3ObjectStore(s3_client_factory(), bucket, prefix)
    return LocalObjectStore(url)

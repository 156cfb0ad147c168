"""Evidence files, stored by their content: `<data_dir>/evidence/<sha256[:2]>/<sha256>`.

A file's name is its SHA-256, so the same file uploaded twice is stored once, what
the audit trail records (the hash) finds the file, and a stored file is never
replaced by different bytes. An upload is written to a temporary file beside the
store and linked into place only once complete and synced, so no reader ever sees
half a file, and a failed or refused upload leaves nothing behind. A download is
served only once the stored bytes still hash to their name (`open_verified`).

`upload_evidence` and `evidence_download` are what the API, the pages and the CLI call:
who may add or read a case's evidence, the store, and the audit trail's record of both.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import os
import re
import tempfile
from collections.abc import AsyncIterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import select

from app.service.cases import act, load_case, record_refusal, refuse_unless_open_to, visible_case
from app.service.errors import Invalid, NotFound, ServiceError, from_refusal
from app.service.services import Services
from models import CaseEvent
from workflows.common import Actor
from workflows.rules import Refusal, check_action, clean_fields

# The default of `Settings.evidence_max_bytes` (CASEWORK_EVIDENCE_MAX_BYTES), which the
# service passes in; the API lets an upload's body be that large too (`app.api`).
MAX_EVIDENCE = 100 * 1024 * 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_READ_CHUNK = 1024 * 1024
# A media type as a client may send it: type/subtype and parameters, nothing to inject.
_MEDIA_TYPE = re.compile(r"^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+(\s*;[ -~]*)?$", re.IGNORECASE)
OCTET_STREAM = "application/octet-stream"


class TooLarge(ServiceError):
    code, status = "too_large", 413


class Damaged(ServiceError):
    """The stored file is no longer what the case recorded: altered, or gone."""

    code, status = "evidence_damaged", 409


@dataclass
class EvidenceDownload:
    """A verified evidence file, open, to stream once: `chunks()` reads and closes it."""

    sha256: str
    size: int
    media_type: str
    filename: str
    file: BinaryIO

    def headers(self) -> dict[str, str]:
        """How every download path serves it: as an attachment, never sniffed or cached."""
        return {
            "Content-Length": str(self.size),
            "Content-Disposition": f'attachment; filename="{self.filename}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        }

    def chunks(self, size: int = 64 * 1024) -> Iterator[bytes]:
        try:
            while chunk := self.file.read(size):
                yield chunk
        finally:
            self.file.close()


def safe_media_type(recorded: object) -> str:
    """The recorded media type if it is one, else application/octet-stream."""
    if isinstance(recorded, str) and _MEDIA_TYPE.match(recorded.strip()):
        return recorded.strip()
    return OCTET_STREAM


def download_name(case_id: str, sha256: str, media_type: str) -> str:
    """`ABU-2026-000001-9f86d081884c.png`: the case, the hash's start, the type's extension."""
    extension = mimetypes.guess_extension(media_type.split(";")[0].strip().lower()) or ""
    return re.sub(r"[^A-Za-z0-9._-]", "_", f"{case_id}-{sha256[:12]}{extension}")


@dataclass(frozen=True)
class StoredEvidence:
    sha256: str
    size: int
    new: bool  # False: these very bytes were already stored


class EvidenceStore:
    """Content-addressed files under `<data_dir>/evidence`."""

    def __init__(self, data_dir: Path, *, limit: int = MAX_EVIDENCE) -> None:
        self.root = data_dir / "evidence"
        self.limit = limit

    def path_of(self, sha256: str) -> Path:
        checked = _checked(sha256)
        return self.root / checked[:2] / checked

    async def store(
        self, content: AsyncIterable[bytes], *, sha256: str | None = None
    ) -> StoredEvidence:
        """Store what `content` yields; Invalid if it is empty or not the `sha256` the
        client gave, TooLarge past the limit (stopping reading there)."""
        expected = _checked(sha256.strip().lower()) if sha256 is not None else None
        incoming = self.root / "incoming"
        await asyncio.to_thread(incoming.mkdir, parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=incoming, prefix="upload-")
        partial = Path(name)
        try:
            digest, size = hashlib.sha256(), 0
            with os.fdopen(fd, "wb") as out:
                async for chunk in content:
                    size += len(chunk)
                    if size > self.limit:
                        raise TooLarge(f"file: larger than {self.limit} bytes")
                    digest.update(chunk)
                    await asyncio.to_thread(out.write, chunk)
                await asyncio.to_thread(_sync, out)
            if size == 0:
                raise Invalid("file: empty (send the file as the request body)")
            actual = digest.hexdigest()
            if expected is not None and actual != expected:
                raise Invalid(f"sha256: the file received has SHA-256 {actual}, not {expected}")
            new = await asyncio.to_thread(self._place, partial, actual)
            return StoredEvidence(sha256=actual, size=size, new=new)
        finally:
            partial.unlink(missing_ok=True)

    def open(self, sha256: str) -> BinaryIO:
        """The stored file, for reading; FileNotFoundError if there is none."""
        return self.path_of(sha256).open("rb")

    def intact(self, sha256: str) -> bool:
        """Whether the file stored under `sha256` still has that hash (tampering shows)."""
        with self.open(sha256) as stored:
            return _hash_of(stored) == sha256

    def open_verified(self, sha256: str) -> tuple[BinaryIO, int]:
        """The stored file, open at its start, and its size, once its bytes are checked
        against its name; FileNotFoundError if none is stored, Damaged if it was altered.
        Checked and served through one open file: swapping the file after the check
        changes nothing that is served. Blocking: run it in a thread."""
        stored = self.open(sha256)
        try:
            actual = _hash_of(stored)
            if actual != sha256:
                raise Damaged(
                    f"sha256: the stored file no longer has SHA-256 {sha256} (it now has"
                    f" {actual}): it was altered after it was recorded, and is not served"
                )
            size = stored.tell()
            stored.seek(0)
        except BaseException:
            stored.close()
            raise
        return stored, size

    def _place(self, partial: Path, sha256: str) -> bool:
        """Link the complete file in under its hash: False if it was there already."""
        final = self.path_of(sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        partial.chmod(0o440)  # evidence is read, never changed
        try:
            # A link never replaces: of two uploads of one file at once, one stores it.
            os.link(partial, final)
        except FileExistsError:
            return False
        _sync_dir(final.parent)
        return True


def _hash_of(stored: BinaryIO) -> str:
    digest = hashlib.sha256()
    while chunk := stored.read(_READ_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def checked_sha256(sha256: str) -> str:
    """`sha256` as the store names files (lower case), or Invalid naming the field."""
    return _checked(sha256.strip().lower())


def _checked(sha256: str) -> str:
    if not _SHA256.match(sha256):
        raise Invalid("sha256: must be 64 lower-case hexadecimal digits (a SHA-256)")
    return sha256


def _sync(out: BinaryIO) -> None:
    out.flush()
    os.fsync(out.fileno())


def _sync_dir(path: Path) -> None:
    """Make a new directory entry durable (POSIX); a no-op where directories cannot."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


async def upload_evidence(
    svc: Services,
    *,
    actor: Actor,
    case_id: str,
    content: AsyncIterable[bytes],
    description: str | None,
    url: str | None = None,
    sha256: str | None = None,
    media_type: str | None = None,
) -> dict[str, Any]:
    """Store an evidence file by its content, then take `add_evidence` with its hash.

    Whoever may not add evidence to the case is refused before a byte is read, as for
    an action (404 if they may not see the case, 409 once closed, 403), and so is a bad
    description or URL. Then the file is stored (422 if it is not the `sha256` given,
    413 past the limit). Should the workflow still refuse the action, the stored file
    stays, unreferenced: stored by content, it overwrites nothing.
    """
    action = "add_evidence"
    rules, case = await load_case(svc, case_id)
    await refuse_unless_open_to(svc, actor, rules, case, action)
    fields: dict[str, Any] = {"description": description, "url": url, "media_type": media_type}
    try:
        clean_fields(check_action(rules, case, actor, action).fields, fields)
        store = EvidenceStore(svc.settings.data_dir, limit=svc.settings.evidence_max_bytes)
        stored = await store.store(content, sha256=sha256)
    except Refusal as r:
        raise await record_refusal(svc, actor, case, action, from_refusal(r)) from None
    except ServiceError as e:
        raise await record_refusal(svc, actor, case, action, e) from None
    fields.update(sha256=stored.sha256, size=stored.size)
    after = await act(svc, actor=actor, case_id=case_id, action=action, fields=fields)
    return {
        "evidence": {"sha256": stored.sha256, "size": stored.size, "new": stored.new},
        "case": after,
    }


async def evidence_download(
    svc: Services, *, actor: Actor, case_id: str, sha256: str
) -> EvidenceDownload:
    """An evidence file of the case, verified against its hash and open to stream.

    Only for those who see the whole case (404 for anyone else, outline viewers too),
    and only a file the case's audit trail records (404 for any other hash: one case's
    evidence is not fetched through another). A stored file whose bytes no longer match
    its hash is refused (409 `evidence_damaged`) and the refusal recorded.
    """
    _, case, view = await visible_case(svc, actor, case_id)
    if view != "whole":
        raise NotFound(f"case: no such case {case_id}")
    wanted = checked_sha256(sha256)
    query = (
        select(CaseEvent.data)
        .where(CaseEvent.case_id == case_id, CaseEvent.kind == "add_evidence")
        .order_by(CaseEvent.seq)
    )
    events = await svc.run(lambda s: list(s.scalars(query)))
    recorded = [data for data in events if data.get("sha256") == wanted]
    if not recorded:
        raise NotFound(f"sha256: {case_id} records no evidence with SHA-256 {wanted}")
    store = EvidenceStore(svc.settings.data_dir)
    try:
        opened, size = await asyncio.to_thread(store.open_verified, wanted)
    except FileNotFoundError:
        if not any("size" in d for d in recorded):  # recorded by hash, never uploaded
            raise NotFound(f"sha256: only the hash {wanted} was recorded, no file") from None
        gone = Damaged(f"sha256: the file uploaded as {wanted} is no longer stored")
        raise await record_refusal(svc, actor, case, "download_evidence", gone) from None
    except Damaged as damaged:
        raise await record_refusal(svc, actor, case, "download_evidence", damaged) from None
    media_type = safe_media_type(recorded[-1].get("media_type"))
    return EvidenceDownload(
        sha256=wanted,
        size=size,
        media_type=media_type,
        filename=download_name(case_id, wanted, media_type),
        file=opened,
    )

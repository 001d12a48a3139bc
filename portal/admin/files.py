"""``/v1/files/``: downloadable files for ``downloadables`` benefits. Polar uploads through presigned S3 URLs;
a self-hosted Portal takes the bytes directly as ``multipart/form-data`` (field ``file``), stores them under
``<data dir>/files/<org id>/<file id>`` and records size, MIME type and SHA-256."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated

from litestar import Controller, delete, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.params import FromPath, MultipartBody, QueryParameter

from portal.admin import deletions, loaders, responses
from portal.admin.auth import Principal
from portal.benefits import reads as benefit_reads
from portal.benefits import service as benefit_service
from portal.clock import Clock
from portal.db import Database
from portal.fields import fold_header
from portal.pagination import LimitParam, ListResource, PageParam, list_resource
from portal.polar.convert import file_out
from portal.polar.models import FileOut
from portal.scope import Scope
from portal.settings import Settings


@dataclass
class FileUpload:
    """The multipart form: the file, and optionally its display name, version and organization."""

    file: UploadFile
    name: str | None = None
    version: str | None = None
    organization_id: str | None = None


class FileController(Controller):
    path = "/files"
    tags = ["files"]

    @get("/", summary="List files", responses=responses.LIST)
    async def list_files(
        self,
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
        organization_id: Annotated[str | None, QueryParameter(max_length=64)] = None,
        ids: Annotated[
            list[str] | None, QueryParameter(description="Only these files (Polar's ``ids``).", max_items=100)
        ] = None,
        page: PageParam = 1,
        limit: LimitParam = 10,
    ) -> ListResource[FileOut]:
        result = await benefit_reads.list_file_records(
            db, Scope(organization_id=principal.list_filter(organization_id)), page=page, limit=limit, ids=ids
        )
        return list_resource([file_out(r) for r in result.records], result.total, limit)

    @post("/", summary="Upload a downloadable file (multipart/form-data)", responses=responses.WRITE)
    async def upload_file(
        self,
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
        principal: NamedDependency[Principal],
        data: MultipartBody[FileUpload],
    ) -> FileOut:
        content = await data.file.read()
        # A name given in the form is checked as given (422 at "name" if it has control characters); the name the
        # client's multipart header carries is only a default, so it is cleaned (control characters to spaces).
        name = (data.name or fold_header(data.file.filename or "") or "file").strip()
        async with db.write() as tx:
            organization_id = await principal.target_organization(tx, data.organization_id)
            stored = await benefit_service.register_file(
                tx,
                organization_id,
                name=name,
                content=content,
                mime_type=data.file.content_type or "application/octet-stream",
                files_dir=settings.files_dir,
                now=clock.now(),
                version=data.version,
            )
        return await loaders.file_by_id(db, principal, stored.id)

    @get("/{id:str}", summary="Get a file's metadata", responses=responses.READ)
    async def get_file(
        self, db: NamedDependency[Database], principal: NamedDependency[Principal], id: FromPath[str]
    ) -> FileOut:
        return await loaders.file_by_id(db, principal, id)

    @delete("/{id:str}", summary="Delete a file no benefit lists", responses=responses.errors(404, 409))
    async def delete_file(
        self,
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        principal: NamedDependency[Principal],
        id: FromPath[str],
    ) -> None:
        await loaders.file_by_id(db, principal, id)
        async with db.write() as tx:
            relative = await deletions.delete_file(tx, id)
        # Unlinked only after the commit, so a rolled-back delete never loses the bytes.
        await asyncio.to_thread((settings.files_dir / relative).unlink, True)

"""svc-infra's own code on the gateway: its document manager (svc_infra.documents),
which any StorageBackend serves, uploads, downloads and deletes through the
adapter, and its typed metadata survives."""

from __future__ import annotations

import hashlib

from svc_infra.documents import easy_documents

from storagegw.svc_infra import GatewayStorageBackend


async def test_svc_infra_documents_on_the_gateway(backend: GatewayStorageBackend) -> None:
    manager = easy_documents(backend)
    contract = b"%PDF-1.4 contract"
    doc = await manager.upload(
        user_id="user_123",
        file=contract,
        filename="contract.pdf",
        metadata={"category": "legal", "year": 2024},
    )
    assert doc.storage_path == f"documents/user_123/{doc.id}/contract.pdf"
    assert await backend.list_keys(prefix="documents/user_123/") == [doc.storage_path]

    stored = await backend.get_metadata(doc.storage_path)
    assert stored["content_type"] == "application/pdf"
    assert (stored["category"], stored["year"]) == ("legal", 2024)
    # svc-infra's checksum of the document is the gateway's SHA-256 of the object.
    assert doc.checksum == f"sha256:{stored['sha256']}"
    assert doc.checksum == f"sha256:{hashlib.sha256(contract).hexdigest()}"

    assert await manager.download(doc.id) == contract
    assert await manager.delete(doc.id) is True
    assert not await backend.exists(doc.storage_path)

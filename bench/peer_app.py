"""The upload-download service a team would write instead of the gateway: FastAPI
under uvicorn, objects as files on local disk. A peer of bench.peers.

PUT /objects/{key} streams the raw request body to a temporary file beside the
object, fsyncs it and renames it over the object (durable once answered, as a
gateway Put is; unlike the gateway it does not fsync the directory too).
GET /objects/{key} is a FileResponse, read from disk in a thread as it is sent.

    python -m bench.peer_app --root DIR --listen 127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
from pathlib import Path

import uvicorn
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

PREFIX = "/objects/"


def create_app(root: Path) -> FastAPI:
    """The app, storing under root (which must exist)."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    base = root.resolve()

    def path_of(key: str) -> Path:
        path = (base / key).resolve()
        if path == base or not path.is_relative_to(base):
            raise HTTPException(status_code=400, detail=f"key {key!r} is outside the store")
        return path

    @app.put(PREFIX + "{key:path}", status_code=201)
    async def put_object(key: str, request: Request) -> Response:
        path = path_of(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in request.stream():
                    out.write(chunk)
                out.flush()
                # fsync blocks for milliseconds: in the thread pool, so other requests go on.
                await run_in_threadpool(os.fsync, out.fileno())
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        return Response(status_code=201)

    @app.get(PREFIX + "{key:path}")
    async def get_object(key: str) -> FileResponse:
        path = path_of(key)
        if not path.is_file():
            raise HTTPException(status_code=404, detail=f"no object {key!r}")
        return FileResponse(path, media_type="application/octet-stream")

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.peer_app", description=__doc__)
    parser.add_argument("--root", type=Path, required=True, help="directory the objects go to")
    parser.add_argument("--listen", default="127.0.0.1:8000", help="HOST:PORT")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    args.root.mkdir(parents=True, exist_ok=True)
    # As deployed: one process, uvicorn's defaults (uvloop and httptools when installed, as
    # with uvicorn[standard]); no access log, as the gateway runs without one in the bench.
    uvicorn.run(
        create_app(args.root), host=host, port=int(port), log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()

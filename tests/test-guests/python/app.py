"""A wasi:http handler in Python, built with componentize-py by
tests/interop: a component from another language's real toolchain, which
the host must load (it links 14 core instances) and serve."""

from wit_world import exports
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)
from componentize_py_types import Ok


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        path = request.path_with_query() or "/"
        response = OutgoingResponse(Fields.from_list([("content-type", b"text/plain")]))
        body = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        stream = body.write()
        stream.blocking_write_and_flush(f"hello from python at {path}".encode())
        stream.__exit__(None, None, None)
        OutgoingBody.finish(body, None)

// A wasi:http handler in JavaScript, built with ComponentizeJS by
// tests/interop: a component from another language's real toolchain
// (SpiderMonkey, pre-initialised by Wizer), which the host must load and serve.
//
// It exports incoming-handler itself rather than using StarlingMonkey's
// fetch event: ComponentizeJS 0.23's engine exports the fetch event as
// wasi:http/incoming-handler@0.2.10, and this repository's WIT is 0.2.12.
import {
  Fields,
  OutgoingBody,
  OutgoingResponse,
  ResponseOutparam,
} from "wasi:http/types@0.2.12";

const encoder = new TextEncoder();

export const incomingHandler = {
  handle(request, responseOut) {
    const text = `hello from javascript at ${request.pathWithQuery() ?? "/"}`;
    const headers = Fields.fromList([["content-type", encoder.encode("text/plain")]]);
    const response = new OutgoingResponse(headers);
    const body = response.body();
    ResponseOutparam.set(responseOut, { tag: "ok", val: response });
    const stream = body.write();
    stream.blockingWriteAndFlush(encoder.encode(text));
    stream[Symbol.dispose]();
    OutgoingBody.finish(body, undefined);
  },
};

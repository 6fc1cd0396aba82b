"""A payload-mode protocol peer for the emulator's tests.

Launched by the emulator as a custom handler: it listens on
$FUNCTIONS_CUSTOMHANDLER_PORT, answers the readiness poll (GET /), appends every
invocation request it receives to recorded.jsonl in its working directory, and
answers with a fixed payload-mode result. Some functions answer otherwise:

- /fails: 500 with the result (the host drops it, Logs included);
- /garbage: 200 with a body that is not JSON;
- /text: the result typed text/plain, which the host cannot read;
- /empty: 200 with no body, and /null: 200 with `null`: no result at all;
- /moved: 302 to /moved-here, which answers the result (the host follows);
- /slow: the result after 3 seconds.

Bodies arrive chunked, as the Functions host sends them. At start-up it writes
what it was launched with to launch.json.
"""

import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = {
    "Outputs": {
        "res": {
            "statusCode": "201",
            "headers": {"Content-Type": "application/json"},
            "body": {"ok": True},
        }
    },
    "Logs": ["line 1"],
    "ReturnValue": None,
}


class Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass  # The emulator would log each request line as an error.

    def answer(self, status, body, content_type="application/json"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                chunk = self.rfile.read(size)
                self.rfile.readline()
                if size == 0:
                    return body
                body += chunk
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def do_POST(self):
        body = self.read_body()
        record = {
            "path": self.path,
            "headers": {name.lower(): value for name, value in self.headers.items()},
            "body": json.loads(body) if body else None,
        }
        with open("recorded.jsonl", "a") as recorded:
            recorded.write(json.dumps(record) + "\n")
        if self.path == "/fails":
            self.answer(500, json.dumps(ANSWER))
        elif self.path == "/garbage":
            self.answer(200, "this is not JSON")
        elif self.path == "/text":
            self.answer(200, json.dumps(ANSWER), "text/plain")
        elif self.path == "/empty":
            self.answer(200, "")
        elif self.path == "/null":
            self.answer(200, "null")
        elif self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/moved-here")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/slow":
            time.sleep(3)
            self.answer(200, json.dumps(ANSWER))
        else:
            self.answer(200, json.dumps(ANSWER))

    def do_GET(self):
        if self.path == "/moved-here":
            # A redirected POST arrives as a GET (302), with no body.
            with open("recorded.jsonl", "a") as recorded:
                recorded.write(json.dumps({"path": self.path, "method": "GET"}) + "\n")
            self.answer(200, json.dumps(ANSWER))
        else:
            self.answer(200, "ready", "text/plain")


names = [
    "FUNCTIONS_CUSTOMHANDLER_PORT",
    "FUNCTIONS_CUSTOMHANDLER_WORKER_ID",
    "FUNCTIONS_HTTPWORKER_PORT",
    "FUNCTIONS_HTTPWORKER_ID",
    "FUNCTIONS_APP_ROOT_PATH",
    "RECORDER_GREETING",
    "FUNCTIONS_EMULATOR_HOST_KEY",
]
with open("launch.json", "w") as launch:
    json.dump({"argv": sys.argv, "cwd": os.getcwd(), "env": {n: os.environ.get(n) for n in names}}, launch)
port = int(os.environ["FUNCTIONS_CUSTOMHANDLER_PORT"])
server = ThreadingHTTPServer(("127.0.0.1", port), Recorder)
print(f"recorder listening on {port}", flush=True)
print("warn: this recorder only records", file=sys.stderr, flush=True)
server.serve_forever()

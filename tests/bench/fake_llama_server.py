#!/usr/bin/env python3
"""tests/bench/fake_llama_server.py MODE - a stand-in for llama.cpp's
llama-server on /v1/completions, for bench_serve_ci.sh: answers a streamed
request the way llama-server (0.3.36's tools/server) does - chunked SSE,
keys in nlohmann's sorted order, one event per token except one event that
carries two (llama-server holds back a token that ends inside a UTF-8
sequence), a last event with empty text and finish_reason, then [DONE].
The token count is in that last event as MODE says:
  usage    "usage":{"completion_tokens":N,...} and "timings":{"predicted_n":N,...}
  timings  only "timings" (llama.cpp's own field)
  none     neither
/health answers 200. Prints the port it listens on, then serves forever."""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODE = sys.argv[1] if len(sys.argv) > 1 else "usage"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        body = b'{"status":"ok"}'
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def chunk(self, data):
        raw = data.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))
        self.wfile.flush()

    def event(self, obj):
        self.chunk("data: " + json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n\n")

    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        n = int(req.get("max_tokens", 16))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        # n tokens in n - 1 events: tokens 2 and 3 arrive together
        texts = [" w%d" % i for i in range(n)]
        texts[2:4] = [texts[2] + texts[3]]
        for t in texts:
            self.event({"choices": [{"finish_reason": None, "index": 0, "logprobs": None, "text": t}],
                        "created": 0, "id": "cmpl-x", "model": "m", "object": "text_completion",
                        "system_fingerprint": "b1"})
        last = {"choices": [{"finish_reason": "length", "index": 0, "logprobs": None, "text": ""}],
                "created": 0, "id": "cmpl-x", "model": "m", "object": "text_completion"}
        timings = {"cache_n": 0, "predicted_ms": 10.0, "predicted_n": n, "prompt_ms": 1.0, "prompt_n": 5}
        if MODE == "usage":
            last["usage"] = {"completion_tokens": n, "prompt_tokens": 5, "total_tokens": n + 5}
            last["timings"] = timings
        elif MODE == "timings":
            last["timings"] = timings
        self.event(last)
        self.chunk("data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.close_connection = True


srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(srv.server_address[1], flush=True)
srv.serve_forever()

"""A zero-delay OpenAI-compatible chat completions server for the answers benchmark.

Streams a fixed answer whose first piece carries the time it was written ("t=<ns> ", from
time.time_ns(), the same clock the client reads), so the client can measure how long the first
token took to travel through Modulo. Non-streaming requests get the same text whole.

Run: python timed_llm.py — prints "PORT <n>" once listening; exits at EOF on stdin.
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PIECES = ["The ", "answer ", "is ", "in ", "the ", "passages ", "[1]", "."]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def chunk(self, text):
        data = text.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        prompt_tokens = sum(len(m["content"].split()) for m in body["messages"])
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(PIECES) + 1,
                 "total_tokens": prompt_tokens + len(PIECES) + 1}
        base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": body["model"]}
        if not body.get("stream"):
            data = json.dumps({**base, "object": "chat.completion", "usage": usage,
                               "choices": [{"index": 0, "finish_reason": "stop",
                                            "message": {"role": "assistant", "content": "".join(PIECES)}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def send(obj):
            self.chunk("data: " + json.dumps(obj) + "\n\n")

        def delta(d, finish=None):
            send({**base, "choices": [{"index": 0, "delta": d, "finish_reason": finish}]})

        delta({"role": "assistant", "content": ""})
        delta({"content": f"t={time.time_ns()} "})
        for p in PIECES:
            delta({"content": p})
        delta({}, "stop")
        send({**base, "choices": [], "usage": usage})
        self.chunk("data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"PORT {server.server_address[1]}", flush=True)
    while sys.stdin.read(4096):
        pass


if __name__ == "__main__":
    main()

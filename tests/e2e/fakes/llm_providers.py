"""A local stand-in for three LLM APIs, written from their public references, for the tests of
src/modulo/generate (and later end-to-end tests):

- OpenAI Chat Completions: POST /v1/chat/completions, Authorization: Bearer; non-streaming
  chat.completion objects and `stream: true` SSE (`data: {chat.completion.chunk}` lines, a final
  usage chunk with `choices: []` when `stream_options.include_usage`, then `data: [DONE]`);
  errors {"error": {"message", "type", "param", "code"}}; unknown body fields are refused.
- Anthropic Messages: POST /v1/messages, x-api-key + anthropic-version headers; `system` is a
  top-level field, `max_tokens` required, roles user/assistant only; SSE named events
  message_start, content_block_start, ping, content_block_delta (text_delta), content_block_stop,
  message_delta (stop_reason, usage.output_tokens), message_stop; errors
  {"type": "error", "error": {"type", "message"}}; 529 overloaded_error.
- IBM watsonx.ai: IAM POST /identity/token (API-key grant, form-encoded), then
  POST /ml/v1/text/generation and /ml/v1/text/generation_stream ?version=YYYY-MM-DD with a bearer
  token; SSE `id: n` / `event: message` / `data: {"results": [{"generated_text", ...}]}`; errors
  {"errors": [{"code", "message"}], "trace", "status_code"}.

Faults are scripted by a tag in the prompt text, `[[fault]]` or `[[fault:id]]`; requests are
counted per id (GET /_stats?id=ID → {"requests", "max_inflight"}, in flight meaning "waiting for
its answer to start"; id "__iam" counts token grants). Faults:
  ratelimit_once        the first request of the id gets 429 with Retry-After: 1, then success
  ratelimit_always      429 with Retry-After: 0, always
  error500_once         500, then success
  overloaded_once       529 (Anthropic's overloaded), then success
  context_length        400 with the provider's "context length exceeded" error body
  truncate              (stream) two text pieces, then the connection breaks; (whole) half a body
  truncate_early_once   (stream) the first request breaks before any text; then success
  malformed             (stream) one text piece, then an event whose data is not JSON
  error_event           (stream) one text piece, then the provider's in-stream error
  no_done               (stream, OpenAI) finish_reason chunk, clean end, no "data: [DONE]"
  slow                  3 s before the response starts
  stall                 (stream) one text piece, then 5 s of silence
  drip                  (stream) one piece every 100 ms, 100 pieces
  slow_ok               300 ms before a normal response (concurrency tests)
  expire_token          (watsonx) all tokens are revoked on the first request of the id → 401

Run: python llm_providers.py [--port N] — prints "PORT <n>" once listening; exits on SIGTERM or
when stdin reaches EOF (so a test that dies does not leave it behind).
"""
import argparse
import json
import re
import socket
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OPENAI_KEY = "sk-test"  # also accepted: "sk-test-<anything>" (distinct keys per test)
ANTHROPIC_KEY = "ak-test"
WATSONX_APIKEY = "wx-test"
WATSONX_PROJECT = "proj-1"
CONTEXT_LIMIT_WORDS = 2000

TAG = re.compile(r"\[\[(\w+)(?::([\w.-]+))?\]\]")


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.by_id = {}

    def enter(self, key):
        with self.lock:
            s = self.by_id.setdefault(key, {"requests": 0, "inflight": 0, "max_inflight": 0})
            s["requests"] += 1
            s["inflight"] += 1
            s["max_inflight"] = max(s["max_inflight"], s["inflight"])
            return s["requests"]

    def leave(self, key):
        with self.lock:
            self.by_id[key]["inflight"] -= 1

    def get(self, key):
        with self.lock:
            s = dict(self.by_id.get(key, {"requests": 0, "inflight": 0, "max_inflight": 0}))
        s.pop("inflight", None)
        return s


STATS = Stats()
TOKENS = {}  # watsonx bearer token -> expiry (epoch seconds)
TOKENS_LOCK = threading.Lock()


def scenario(text):
    m = TAG.search(text or "")
    if not m:
        return None, None
    return m.group(1), m.group(2) or m.group(1)


def answer_pieces(question, extra=""):
    words = TAG.sub("", question).split()
    text = "Echo: " + " ".join(words[-8:]) + extra
    pieces = re.findall(r"\S+\s*|\s+", text)
    return pieces


class Disconnect(Exception):
    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    # ---- plumbing ----
    def send_json(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def start_stream(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def chunk(self, text):
        data = text.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_stream(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def break_connection(self):
        self.wfile.flush()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        raise Disconnect()

    def truncated_json(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.break_connection()

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        if url.path == "/_stats":
            key = urllib.parse.parse_qs(url.query).get("id", [""])[0]
            return self.send_json(200, STATS.get(key))
        return self.send_json(404, {"detail": "not found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        raw = self.rfile.read(length)
        url = urllib.parse.urlparse(self.path)
        routes = {
            "/v1/chat/completions": self.openai,
            "/v1/messages": self.anthropic,
            "/identity/token": self.iam,
            "/ml/v1/text/generation": lambda raw, q: self.watsonx(raw, q, False),
            "/ml/v1/text/generation_stream": lambda raw, q: self.watsonx(raw, q, True),
        }
        route = routes.get(url.path)
        if route is None:
            return self.send_json(404, {"detail": f"no route {url.path}"})
        try:
            route(raw, urllib.parse.parse_qs(url.query))
        except (Disconnect, BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # Runs a scripted request: counts it, applies common faults, then calls `ok`.
    # `errors` maps fault -> (status, body, headers) in the provider's format.
    def scripted(self, text, stream, errors, ok):
        fault, key = scenario(text)
        n = STATS.enter(key) if key else 0
        try:
            if fault == "slow":
                time.sleep(3)
            if fault == "slow_ok":
                time.sleep(0.3)
        finally:
            if key:  # in flight = until the answer starts, so a client's next request never overlaps
                STATS.leave(key)
        once = {"ratelimit_once": "ratelimit", "error500_once": "error500", "overloaded_once": "overloaded"}
        if fault in once and n == 1:
            status, body, headers = errors[once[fault]]
            return self.send_json(status, body, headers)
        if fault == "ratelimit_always":
            status, body, _ = errors["ratelimit"]
            return self.send_json(status, body, [("Retry-After", "0")])
        if fault == "context_length":
            status, body, headers = errors["context_length"]
            return self.send_json(status, body, headers)
        if fault == "truncate_early_once" and n > 1:
            fault = None
        ok(fault if stream or fault == "truncate" else None)

    # Streams `pieces` through the provider callbacks, applying the stream faults.
    def stream_pieces(self, fault, pieces, emit_piece, emit_error, emit_malformed):
        for i, piece in enumerate(pieces):
            if fault == "truncate" and i == 2:
                self.break_connection()
            if fault == "malformed" and i == 1:
                emit_malformed()
                self.end_stream()
                return False
            if fault == "error_event" and i == 1:
                emit_error()
                self.end_stream()
                return False
            if fault == "stall" and i == 1:
                time.sleep(5)
            emit_piece(piece)
        if fault == "drip":
            for i in range(100):
                time.sleep(0.1)
                emit_piece(f" drip{i}")
        return True

    # ---- OpenAI ----
    def openai(self, raw, _query):
        def err(status, message, type_, code=None, param=None, headers=()):
            return self.send_json(status, {"error": {"message": message, "type": type_, "param": param,
                                                     "code": code}}, headers)

        auth = self.headers.get("Authorization") or ""
        if not (auth == f"Bearer {OPENAI_KEY}" or auth.startswith(f"Bearer {OPENAI_KEY}-")):
            return err(401, "Incorrect API key provided. You can find your API key at "
                            "https://platform.openai.com/account/api-keys.", "invalid_request_error",
                       "invalid_api_key")
        try:
            body = json.loads(raw)
        except ValueError:
            return err(400, "We could not parse the JSON body of your request.", "invalid_request_error")
        allowed = {"model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop",
                   "stream", "stream_options", "n", "seed", "presence_penalty", "frequency_penalty", "user"}
        for k in body:
            if k not in allowed:
                return err(400, f"Unrecognized request argument supplied: {k}", "invalid_request_error")
        if not isinstance(body.get("model"), str):
            return err(400, "you must provide a model parameter", "invalid_request_error")
        msgs = body.get("messages")
        if not isinstance(msgs, list) or not msgs:
            return err(400, "[] is too short - 'messages'", "invalid_request_error", param="messages")
        for m in msgs:
            if m.get("role") not in ("system", "developer", "user", "assistant") or not isinstance(m.get("content"), str):
                return err(400, f"Invalid message: {m}", "invalid_request_error", param="messages")
        stream = body.get("stream") is True
        if "stream_options" in body and not stream:
            return err(400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                       "invalid_request_error", param="stream_options")
        stop = body.get("stop")
        if isinstance(stop, list) and len(stop) > 4:
            return err(400, "Invalid 'stop': array too long. Expected an array with maximum length 4.",
                       "invalid_request_error", param="stop")
        question = msgs[-1]["content"]
        prompt_tokens = sum(len(m["content"].split()) for m in msgs)
        if prompt_tokens > CONTEXT_LIMIT_WORDS:
            return err(400, f"This model's maximum context length is {CONTEXT_LIMIT_WORDS} tokens. However, your "
                            f"messages resulted in {prompt_tokens} tokens. Please reduce the length of the messages.",
                       "invalid_request_error", "context_length_exceeded", "messages")
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens") or 1 << 30
        model = body["model"]
        errors = {
            "ratelimit": (429, {"error": {"message": f"Rate limit reached for {model} on requests per min (RPM).",
                                          "type": "requests", "param": None, "code": "rate_limit_exceeded"}},
                          [("Retry-After", "1")]),
            "error500": (500, {"error": {"message": "The server had an error while processing your request. "
                                                    "Sorry about that!", "type": "server_error", "param": None,
                                         "code": None}}, []),
            "overloaded": (503, {"error": {"message": "The engine is currently overloaded.", "type": "server_error",
                                           "param": None, "code": None}}, []),
            "context_length": (400, {"error": {
                "message": "This model's maximum context length is 8192 tokens. However, your messages resulted "
                           "in 9000 tokens. Please reduce the length of the messages.",
                "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}, []),
        }
        pieces = answer_pieces(question)
        finish = "stop"
        if len(pieces) > max_tokens:
            pieces, finish = pieces[:max_tokens], "length"
        cid, created = "chatcmpl-" + uuid.uuid4().hex[:12], int(time.time())
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(pieces),
                 "total_tokens": prompt_tokens + len(pieces)}
        include_usage = stream and (body.get("stream_options") or {}).get("include_usage") is True

        def whole(fault):
            resp = {"id": cid, "object": "chat.completion", "created": created, "model": model,
                    "system_fingerprint": "fp_fake",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(pieces),
                                                         "refusal": None},
                                 "logprobs": None, "finish_reason": finish}],
                    "usage": usage}
            if fault == "truncate":
                return self.truncated_json(resp)
            self.send_json(200, resp)

        def chunk_obj(delta, finish_reason=None):
            c = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                 "system_fingerprint": "fp_fake",
                 "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}
            if include_usage:
                c["usage"] = None
            return c

        def streamed(fault):
            self.start_stream()
            send = lambda obj: self.chunk("data: " + json.dumps(obj) + "\n\n")
            send(chunk_obj({"role": "assistant", "content": "", "refusal": None}))
            if fault == "truncate_early_once":
                self.break_connection()
            done = self.stream_pieces(
                fault, pieces,
                lambda p: send(chunk_obj({"content": p})),
                lambda: send({"error": {"message": "The server had an error while processing your request.",
                                        "type": "server_error", "param": None, "code": None}}),
                lambda: self.chunk('data: {"id": "chatcmpl-x", "choices": [{"delta": {"content": "oops"\n\n'))
            if not done:
                return
            send(chunk_obj({}, finish))
            if fault == "no_done":
                return self.end_stream()
            if include_usage:
                send({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                      "system_fingerprint": "fp_fake", "choices": [], "usage": usage})
            self.chunk("data: [DONE]\n\n")
            self.end_stream()

        self.scripted(question, stream, errors, streamed if stream else whole)

    # ---- Anthropic ----
    def anthropic(self, raw, _query):
        def err(status, type_, message, headers=()):
            return self.send_json(status, {"type": "error", "error": {"type": type_, "message": message}},
                                  [("request-id", "req_fake")] + list(headers))

        if self.headers.get("x-api-key") != ANTHROPIC_KEY:
            return err(401, "authentication_error", "invalid x-api-key")
        if not self.headers.get("anthropic-version"):
            return err(400, "invalid_request_error", "anthropic-version: header is required")
        if not (self.headers.get("content-type") or "").startswith("application/json"):
            return err(400, "invalid_request_error", "content-type must be application/json")
        try:
            body = json.loads(raw)
        except ValueError:
            return err(400, "invalid_request_error", "request body is not valid JSON")
        allowed = {"model", "messages", "max_tokens", "system", "temperature", "top_p", "top_k", "stop_sequences",
                   "stream", "metadata", "tools", "tool_choice", "thinking"}
        for k in body:
            if k not in allowed:
                return err(400, "invalid_request_error", f"{k}: Extra inputs are not permitted")
        if not isinstance(body.get("model"), str):
            return err(400, "invalid_request_error", "model: Field required")
        if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
            return err(400, "invalid_request_error", "max_tokens: Field required")
        t = body.get("temperature")
        if t is not None and not (0 <= t <= 1):
            return err(400, "invalid_request_error", "temperature: Input should be less than or equal to 1")
        if "system" in body and not isinstance(body["system"], (str, list)):
            return err(400, "invalid_request_error", "system: Input should be a valid string")
        msgs = body.get("messages")
        if not isinstance(msgs, list) or not msgs:
            return err(400, "invalid_request_error", "messages: at least one message is required")
        for i, m in enumerate(msgs):
            if m.get("role") not in ("user", "assistant"):
                return err(400, "invalid_request_error",
                           f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if msgs[0]["role"] != "user":
            return err(400, "invalid_request_error", "messages: first message must use the \"user\" role")
        question = msgs[-1]["content"] if isinstance(msgs[-1]["content"], str) else ""
        input_tokens = sum(len(m["content"].split()) for m in msgs if isinstance(m["content"], str))
        if isinstance(body.get("system"), str):
            input_tokens += len(body["system"].split())
        if input_tokens > CONTEXT_LIMIT_WORDS:
            return err(400, "invalid_request_error", f"prompt is too long: {input_tokens} tokens > "
                                                     f"{CONTEXT_LIMIT_WORDS} maximum")
        stream = body.get("stream") is True
        model = body["model"]
        errors = {
            "ratelimit": (429, {"type": "error", "error": {"type": "rate_limit_error",
                                                           "message": "Number of request tokens has exceeded your "
                                                                      "per-minute rate limit"}},
                          [("Retry-After", "1")]),
            "error500": (500, {"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}, []),
            "overloaded": (529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, []),
            "context_length": (400, {"type": "error", "error": {
                "type": "invalid_request_error", "message": "prompt is too long: 210000 tokens > 200000 maximum"}}, []),
        }
        extra = f" [system: {body['system']}]" if isinstance(body.get("system"), str) else ""
        pieces = answer_pieces(question, extra)
        stop_reason = "end_turn"
        if len(pieces) > body["max_tokens"]:
            pieces, stop_reason = pieces[: body["max_tokens"]], "max_tokens"
        mid = "msg_" + uuid.uuid4().hex[:20]

        def whole(fault):
            resp = {"id": mid, "type": "message", "role": "assistant", "model": model,
                    "content": [{"type": "text", "text": "".join(pieces)}], "stop_reason": stop_reason,
                    "stop_sequence": None,
                    "usage": {"input_tokens": input_tokens, "output_tokens": len(pieces),
                              "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}
            if fault == "truncate":
                return self.truncated_json(resp)
            self.send_json(200, resp)

        def streamed(fault):
            self.start_stream()

            def event(name, data):
                self.chunk(f"event: {name}\ndata: {json.dumps(data)}\n\n")

            event("message_start", {"type": "message_start", "message": {
                "id": mid, "type": "message", "role": "assistant", "model": model, "content": [],
                "stop_reason": None, "stop_sequence": None,
                "usage": {"input_tokens": input_tokens, "output_tokens": 1, "cache_creation_input_tokens": 0,
                          "cache_read_input_tokens": 0}}})
            if fault == "truncate_early_once":
                self.break_connection()
            event("content_block_start", {"type": "content_block_start", "index": 0,
                                          "content_block": {"type": "text", "text": ""}})
            event("ping", {"type": "ping"})
            sent = [0]

            def piece(p):
                sent[0] += 1
                event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                              "delta": {"type": "text_delta", "text": p}})

            done = self.stream_pieces(
                fault, pieces, piece,
                lambda: event("error", {"type": "error", "error": {"type": "overloaded_error",
                                                                  "message": "Overloaded"}}),
                lambda: self.chunk('event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, '
                                   '"delta": {"type": "text_delta", "text": "oops"\n\n'))
            if not done:
                return
            event("content_block_stop", {"type": "content_block_stop", "index": 0})
            event("message_delta", {"type": "message_delta",
                                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                    "usage": {"output_tokens": sent[0]}})
            event("message_stop", {"type": "message_stop"})
            self.end_stream()

        self.scripted(question, stream, errors, streamed if stream else whole)

    # ---- IBM Cloud IAM + watsonx.ai ----
    def iam(self, raw, _query):
        if self.headers.get("Content-Type") != "application/x-www-form-urlencoded":
            return self.send_json(400, {"errorCode": "BXNIM0109E", "errorMessage": "wrong content type"})
        form = urllib.parse.parse_qs(raw.decode())
        if form.get("grant_type") != ["urn:ibm:params:oauth:grant-type:apikey"]:
            return self.send_json(400, {"errorCode": "BXNIM0103E", "errorMessage": "bad grant_type"})
        if form.get("apikey") != [WATSONX_APIKEY]:
            return self.send_json(400, {"errorCode": "BXNIM0415E",
                                        "errorMessage": "Provided API key could not be found."})
        STATS.enter("__iam")
        STATS.leave("__iam")
        token = "wxtok-" + uuid.uuid4().hex
        lifetime = 3600
        with TOKENS_LOCK:
            TOKENS[token] = time.time() + lifetime
        return self.send_json(200, {"access_token": token, "refresh_token": "not_supported", "token_type": "Bearer",
                                    "expires_in": lifetime, "expiration": int(time.time() + lifetime),
                                    "scope": "ibm openid"})

    def watsonx(self, raw, query, stream):
        def err(status, code, message, headers=()):
            return self.send_json(status, {"errors": [{"code": code, "message": message}],
                                           "trace": uuid.uuid4().hex, "status_code": status}, headers)

        if "version" not in query:
            return err(400, "missing_version", "version query parameter is required")
        auth = self.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ")
        try:
            body = json.loads(raw)
        except ValueError:
            return err(400, "json_type_error", "Failed to parse the request body as JSON")
        text = body.get("input")
        fault, key = scenario(text if isinstance(text, str) else "")
        if fault == "expire_token" and STATS.get(key)["requests"] == 0:
            STATS.enter(key)
            STATS.leave(key)
            with TOKENS_LOCK:
                TOKENS.clear()
        with TOKENS_LOCK:
            valid = auth.startswith("Bearer ") and TOKENS.get(token, 0) > time.time()
        if not valid:
            return err(401, "authentication_token_expired", "Failed to authenticate the request due to an "
                                                            "expired token")
        if body.get("project_id") != WATSONX_PROJECT and "space_id" not in body:
            return err(400, "json_validation_error", "Either space_id or project_id has to be provided")
        if not isinstance(body.get("model_id"), str):
            return err(400, "json_validation_error", "model_id is required")
        if not isinstance(text, str):
            return err(400, "json_validation_error", "input is required")
        params = body.get("parameters") or {}
        known = {"decoding_method", "max_new_tokens", "min_new_tokens", "temperature", "top_p", "top_k",
                 "repetition_penalty", "stop_sequences", "random_seed", "time_limit", "truncate_input_tokens",
                 "include_stop_sequence", "length_penalty", "return_options"}
        for k in params:
            if k not in known:
                return err(400, "json_validation_error", f"parameters.{k} is not a valid parameter")
        if params.get("decoding_method", "greedy") not in ("greedy", "sample"):
            return err(400, "json_validation_error", "decoding_method must be greedy or sample")
        rp = params.get("repetition_penalty", 1)
        if not (1 <= rp <= 2):
            return err(400, "json_validation_error", "repetition_penalty must be between 1 and 2")
        input_tokens = len(text.split())
        if input_tokens > CONTEXT_LIMIT_WORDS:
            return err(400, "invalid_input_argument", f"the number of input tokens {input_tokens} cannot exceed "
                                                      f"the total tokens limit {CONTEXT_LIMIT_WORDS} for this model")
        model = body["model_id"]
        errors = {
            "ratelimit": (429, {"errors": [{"code": "too_many_requests", "message": "rate limit exceeded"}],
                                "trace": "t", "status_code": 429}, [("Retry-After", "1")]),
            "error500": (500, {"errors": [{"code": "internal_error", "message": "internal error"}],
                               "trace": "t", "status_code": 500}, []),
            "overloaded": (503, {"errors": [{"code": "service_unavailable", "message": "service unavailable"}],
                                 "trace": "t", "status_code": 503}, []),
            "context_length": (400, {"errors": [{
                "code": "invalid_input_argument",
                "message": "the number of input tokens 9000 cannot exceed the total tokens limit 8192 for this "
                           "model"}], "trace": "t", "status_code": 400}, []),
        }
        pieces = answer_pieces(text.rsplit("User:", 1)[-1].replace("Assistant:", ""))
        stop_reason = "eos_token"
        max_new = params.get("max_new_tokens", 20)
        if len(pieces) > max_new:
            pieces, stop_reason = pieces[:max_new], "max_tokens"
        created = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())

        def result(generated, count, stop, input_count):
            return {"model_id": model, "model_version": "1.0.0", "created_at": created,
                    "results": [{"generated_text": generated, "generated_token_count": count,
                                 "input_token_count": input_count, "stop_reason": stop}]}

        def whole(fault):
            resp = result("".join(pieces), len(pieces), stop_reason, input_tokens)
            if fault == "truncate":
                return self.truncated_json(resp)
            self.send_json(200, resp)

        def streamed(fault):
            self.start_stream()
            seq = [0]

            def event(data, name="message"):
                seq[0] += 1
                self.chunk(f"id: {seq[0]}\nevent: {name}\ndata: {data}\n\n")

            event(json.dumps(result("", 0, "not_finished", input_tokens)))
            if fault == "truncate_early_once":
                self.break_connection()
            count = [0]

            def piece(p):
                count[0] += 1
                event(json.dumps(result(p, count[0], "not_finished", 0)))

            done = self.stream_pieces(
                fault, pieces, piece,
                lambda: event(json.dumps({"errors": [{"code": "internal_error", "message": "generation failed"}],
                                          "trace": "t", "status_code": 500}), "error"),
                lambda: event('{"model_id": "' + model + '", "results": [{"generated_text": "oops"'))
            if not done:
                return
            event(json.dumps(result("", count[0], stop_reason, 0)))
            self.end_stream()

        self.scripted(text, stream, errors, streamed if stream else whole)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionError, BrokenPipeError)):
            return  # a client that cancelled or timed out
        super().handle_error(request, client_address)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = Server(("127.0.0.1", args.port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"PORT {server.server_address[1]}", flush=True)

    try:
        while sys.stdin.read(4096):  # returns "" at EOF: the parent went away
            pass
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

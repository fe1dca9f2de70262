"""A local stand-in for IBM Cloud IAM and the watsonx.ai text embeddings API, written from their
public references: IAM's API-key grant (form-encoded, returns access_token and expires_in), and
POST /ml/v1/text/embeddings?version=YYYY-MM-DD with {"inputs", "model_id", "project_id",
"parameters"} returning {"model_id", "results": [{"embedding"}], "input_token_count"}; errors
are {"errors": [{"code", "message"}], "trace", "status_code"}."""
import hashlib
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeWatsonx:
    def __init__(self, api_key="test-key", project_id="proj-1", model_id="ibm/slate-30m-english-rtrvr",
                 token_lifetime=3600, dimension=8, fail_first=0):
        self.api_key, self.project_id, self.model_id = api_key, project_id, model_id
        self.token_lifetime, self.dimension = token_lifetime, dimension
        self.fail_first = fail_first  # answer 429 with Retry-After to the first N embedding calls
        self.tokens = {}              # token -> expiry
        self.token_grants = 0
        self.embedding_calls = 0
        self.rejected = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status, body, headers=()):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def error(self, status, code, message, headers=()):
                fake.rejected.append((status, code))
                self.reply(status, {"errors": [{"code": code, "message": message}], "trace": "t",
                                    "status_code": status}, headers)

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                url = urllib.parse.urlparse(self.path)
                if url.path == "/identity/token":
                    if self.headers.get("Content-Type") != "application/x-www-form-urlencoded":
                        return self.reply(400, {"errorCode": "BXNIM0109E", "errorMessage": "wrong content type"})
                    form = urllib.parse.parse_qs(raw.decode())
                    if form.get("grant_type") != ["urn:ibm:params:oauth:grant-type:apikey"]:
                        return self.reply(400, {"errorCode": "BXNIM0103E", "errorMessage": "bad grant_type"})
                    if form.get("apikey") != [fake.api_key]:
                        return self.reply(400, {"errorCode": "BXNIM0415E", "errorMessage": "Provided API key could not be found."})
                    with fake.lock:
                        fake.token_grants += 1
                        token = f"token-{fake.token_grants}"
                        fake.tokens[token] = time.time() + fake.token_lifetime
                    return self.reply(200, {"access_token": token, "refresh_token": "not_supported",
                                            "token_type": "Bearer", "expires_in": fake.token_lifetime,
                                            "expiration": int(time.time() + fake.token_lifetime)})
                if url.path != "/ml/v1/text/embeddings":
                    return self.error(404, "not_found", "no such route")
                query = urllib.parse.parse_qs(url.query)
                if "version" not in query:
                    return self.error(400, "missing_version", "version query parameter is required")
                auth = self.headers.get("Authorization", "")
                token = auth.removeprefix("Bearer ")
                if not auth.startswith("Bearer ") or fake.tokens.get(token, 0) < time.time():
                    return self.error(401, "authentication_token_expired", "Failed to authenticate the request")
                body = json.loads(raw)
                if body.get("project_id") != fake.project_id and "space_id" not in body:
                    return self.error(400, "json_validation_error", "Either space_id or project_id has to be given")
                if body.get("model_id") != fake.model_id:
                    return self.error(404, "model_not_supported", f"Model '{body.get('model_id')}' is not supported")
                inputs = body.get("inputs")
                if not isinstance(inputs, list) or not inputs or len(inputs) > 1000:
                    return self.error(400, "json_validation_error", "inputs must hold 1 to 1000 strings")
                with fake.lock:
                    fake.embedding_calls += 1
                    if fake.fail_first > 0:
                        fake.fail_first -= 1
                        return self.error(429, "too_many_requests", "rate limit", [("Retry-After", "1")])
                results = []
                tokens = 0
                for text in inputs:
                    digest = hashlib.sha256(text.encode()).digest()
                    results.append({"embedding": [(b - 128) / 128.0 for b in digest[: fake.dimension]]})
                    tokens += len(text.split())
                return self.reply(200, {"model_id": fake.model_id, "results": results,
                                        "created_at": "2026-01-01T00:00:00.000Z", "input_token_count": tokens})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

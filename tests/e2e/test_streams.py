"""WebSocket at /ws and Server-Sent Events at /api/events."""
import json

import requests
import websocket


def test_websocket_protocol(server):
    ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/ws", timeout=5)
    hello = json.loads(ws.recv())
    assert hello["type"] == "connection_established"
    ws.send(json.dumps({"type": "ping", "timestamp": 12345}))
    assert json.loads(ws.recv()) == {"type": "pong", "timestamp": 12345}
    ws.send("not json")
    assert json.loads(ws.recv()) == {"type": "error", "message": "Invalid JSON format"}
    ws.send(json.dumps({"type": "teleport"}))
    assert json.loads(ws.recv())["message"] == "Unknown message type: teleport"
    ws.send(json.dumps({"type": "subscribe", "topic": "task:42"}))
    assert json.loads(ws.recv()) == {"type": "subscribed", "topic": "task:42"}
    ws.send(json.dumps({"type": "subscribe", "topic": "../etc"}))
    assert json.loads(ws.recv())["type"] == "error"
    ws.close()
    assert requests.get(server.url + "/health").status_code == 200


def test_ws_without_upgrade_is_426(server):
    r = requests.get(server.url + "/ws")
    assert r.status_code == 426
    assert r.headers["Upgrade"] == "websocket"


def test_event_stream_opens_with_the_event_stream_content_type(server):
    with requests.get(server.url + "/api/events", params={"topic": "task:1"}, stream=True, timeout=5) as r:
        assert r.status_code == 200
        assert r.headers["Content-Type"] == "text/event-stream"
        first = next(r.iter_lines())
        assert first == b": subscribed"


def test_json_logs_carry_the_request_id(start_server):
    server = start_server("--log-format", "json")
    requests.get(server.url + "/health", headers={"X-Request-ID": "trace-me-1"})
    requests.post(server.url + "/v1/embeddings", json={"input": "x"}, headers={"X-Request-ID": "trace-me-2"})
    server.stop()
    lines = [json.loads(l) for l in server.log().splitlines() if l.strip()]
    access = [l for l in lines if l.get("request_id") == "trace-me-1"]
    assert access and access[0]["msg"] == "request"
    assert access[0]["route"] == "/health" and access[0]["status"] == 200
    assert "duration_ms" in access[0] and "bytes" in access[0]
    post = [l for l in lines if l.get("request_id") == "trace-me-2" and l["msg"] == "request"]
    assert post and post[0]["method"] == "POST" and post[0]["route"] == "/v1/embeddings", post

"""Responses are gzipped for clients that accept it: phones on patchy networks."""

from __future__ import annotations

import gzip
import json

from backend import web
from tests.support import make_user


def test_a_large_json_answer_is_gzipped_when_the_client_accepts_it(client):
    plain = client.get("/api/v1/openapi.json")
    zipped = client.get("/api/v1/openapi.json", headers={"Accept-Encoding": "br, gzip;q=0.8"})
    assert "Content-Encoding" not in plain.headers and "Accept-Encoding" in plain.headers["Vary"]
    assert zipped.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in zipped.headers["Vary"]
    assert json.loads(gzip.decompress(zipped.get_data())) == plain.get_json()
    assert int(zipped.headers["Content-Length"]) < len(plain.get_data()) / 4


def test_small_answers_refused_encodings_and_fresh_tokens_stay_plain(app, client, monkeypatch):
    assert "Content-Encoding" not in client.get("/health", headers={"Accept-Encoding": "gzip"}).headers
    refused = client.get("/api/v1/openapi.json", headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in refused.headers
    monkeypatch.setattr(web, "GZIP_MIN_BYTES", 1)  # any body would do: the token's answer is still plain
    user = make_user(app)
    signed_in = client.post("/api/v1/auth/tokens", headers={"Accept-Encoding": "gzip"},
                            json={"username": user.username, "password": user.password})
    assert signed_in.status_code == 201 and "Content-Encoding" not in signed_in.headers
    me = client.get("/api/v1/me", headers={"Accept-Encoding": "gzip",
                                           "Authorization": f"Bearer {signed_in.get_json()['token']}"})
    assert me.headers["Content-Encoding"] == "gzip"

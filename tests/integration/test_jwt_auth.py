"""OIDC bearer tokens verified against a key set served on loopback."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from tests.conftest import TenantKeys
from wms.app import create_app
from wms.config import Settings

ISSUER = "https://id.example.test/realms/wms"
AUDIENCE = "wms-api"


class KeyServer:
    """A JWKS endpoint on loopback whose key set the test can change."""

    def __init__(self, declared_alg: str | None = "RS256") -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.declared_alg = declared_alg  # None: the JWKs leave ``alg`` out (RFC 7517 allows)
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                body = json.dumps(outer.document()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"

    def add_key(self, kid: str) -> rsa.RSAPrivateKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.keys[kid] = key
        return key

    def document(self) -> dict[str, Any]:
        keys = []
        for kid, key in self.keys.items():
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            jwk.pop("alg", None)
            alg = {"alg": self.declared_alg} if self.declared_alg else {}
            keys.append({**jwk, **alg, "kid": kid, "use": "sig"})
        return {"keys": keys}


@pytest.fixture
def keys() -> Iterator[KeyServer]:
    server = KeyServer()
    server.add_key("k1")
    yield server
    server.stop()


@pytest.fixture
def oidc_client(settings: Settings, keys: KeyServer) -> Iterator[TestClient]:
    with oidc_app(settings, keys) as client:
        yield client


@contextmanager
def oidc_app(settings: Settings, keys: KeyServer) -> Iterator[TestClient]:
    """An app trusting ``keys``' issuer, its key set fetched afresh for each token."""
    configured = settings.model_copy(
        update={
            "oidc_issuer": ISSUER,
            "oidc_audience": AUDIENCE,
            "oidc_jwks_url": keys.url,
            "oidc_jwks_cache_seconds": 0.0,
        }
    )
    with TestClient(create_app(configured), raise_server_exceptions=False) as client:
        yield client


def make_token(
    keys: KeyServer, who: TenantKeys, kid: str = "k1", algorithm: str = "RS256", **claims: Any
) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "tenant": who.code,
            "roles": ["admin"], "iat": now, "exp": now + 300, **claims}  # fmt: skip
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, keys.keys[kid], algorithm=algorithm, headers={"kid": kid})


def call(client: TestClient, token: str, method: str = "GET", path: str = "/warehouses",
         **kwargs: Any) -> int:  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"}
    return client.request(method, "/api/v1" + path, headers=headers, **kwargs).status_code


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_valid_token_acts_for_its_tenant_and_subject(
    oidc_client: TestClient, keys: KeyServer, tenant: TenantKeys, database_url: str
) -> None:
    token = make_token(keys, tenant)
    created = oidc_client.post(
        "/api/v1/warehouses",
        json={"code": "SP1", "name": "One", "timezone": "UTC"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert created.status_code == 201, created.text
    with psycopg.connect(database_url) as conn:
        actor = conn.execute("SELECT actor FROM wms.audit_log").fetchone()
    assert actor == ("jwt:alice",)
    # API keys keep working beside tokens.
    assert call(oidc_client, tenant.keys[next(iter(tenant.keys))]) == 200


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": int(time.time()) - 3600},
        {"aud": "someone-else"},
        {"iss": "https://evil.example.test"},
        {"tenant": "no-such-tenant"},
        {"tenant": None},
        {"sub": None},
        {"roles": ["emperor"]},
    ],
)
def test_tokens_with_bad_claims_answer_401(
    oidc_client: TestClient, keys: KeyServer, tenant: TenantKeys, claims: dict[str, Any]
) -> None:
    assert call(oidc_client, make_token(keys, tenant, **claims)) == 401


def test_a_role_claim_is_checked_against_the_matrix(
    oidc_client: TestClient, keys: KeyServer, tenant: TenantKeys
) -> None:
    reader = make_token(keys, tenant, roles="readonly")
    assert call(oidc_client, reader) == 200
    body = {"code": "X", "name": "X", "timezone": "UTC"}
    assert call(oidc_client, reader, "POST", "/warehouses", json=body) == 403
    # Roles whose rights do not contain each other: each opens its own routes (the
    # strongest alone, operator, was kept before, and integration's POST /orders was 403).
    both = make_token(keys, tenant, roles=["operator", "integration"])
    assert call(oidc_client, both, "POST", "/orders", json={}) == 422  # past the role check
    assert call(oidc_client, both, "POST", "/inventory/moves", json={}) == 422
    assert call(oidc_client, both, "PATCH", "/settings", json={}) == 403  # neither's


def test_unknown_kid_alg_none_and_hs_rs_confusion_are_refused(
    oidc_client: TestClient, keys: KeyServer, tenant: TenantKeys
) -> None:
    stranger = KeyServer()
    stranger.add_key("k1")
    forged = make_token(stranger, tenant)  # right kid, wrong key
    assert call(oidc_client, forged) == 401
    unknown = make_token(keys, tenant)
    _, payload, signature = unknown.split(".")
    relabelled = b64(json.dumps({"alg": "RS256", "kid": "k9", "typ": "JWT"}).encode())
    assert call(oidc_client, f"{relabelled}.{payload}.{signature}") == 401
    none_header = b64(json.dumps({"alg": "none", "kid": "k1", "typ": "JWT"}).encode())
    assert call(oidc_client, f"{none_header}.{payload}.") == 401
    # HS256 "signed" with the issuer's public key as the HMAC secret.
    public_pem = (
        keys.keys["k1"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    hs_header = b64(json.dumps({"alg": "HS256", "kid": "k1", "typ": "JWT"}).encode())
    signing_input = f"{hs_header}.{payload}".encode()
    mac = b64(hmac.new(public_pem, signing_input, hashlib.sha256).digest())
    assert call(oidc_client, f"{hs_header}.{payload}.{mac}") == 401
    assert call(oidc_client, "not.a.jwt") == 401
    stranger.stop()


@pytest.mark.parametrize("alg", [["RS256"], {"name": "RS256"}])
def test_a_header_whose_alg_is_not_a_string_is_401(
    oidc_client: TestClient, keys: KeyServer, tenant: TenantKeys, alg: object
) -> None:
    # An unhashable alg raised TypeError in the lookup among accepted algorithms: a 500.
    _, payload, signature = make_token(keys, tenant).split(".")
    header = b64(json.dumps({"alg": alg, "kid": "k1", "typ": "JWT"}).encode())
    assert call(oidc_client, f"{header}.{payload}.{signature}") == 401


@pytest.mark.parametrize("algorithm", ["RS384", "PS256"])
def test_a_key_without_alg_verifies_any_rsa_algorithm_and_a_declared_alg_binds(
    settings: Settings, tenant: TenantKeys, algorithm: str
) -> None:
    # PyJWK fills in RS256 for an RSA JWK without alg, and that was taken as declared:
    # every RS384 or PS256 token of such an issuer (Azure AD's keys, say) was refused.
    for declared_alg, status in ((None, 200), ("RS256", 401)):
        server = KeyServer(declared_alg)
        server.add_key("k1")
        try:
            with oidc_app(settings, server) as client:
                assert call(client, make_token(server, tenant, algorithm=algorithm)) == status
        finally:
            server.stop()


def test_rotated_keys_are_picked_up_from_the_issuer(
    oidc_client: TestClient, keys: KeyServer, tenant: TenantKeys
) -> None:
    assert call(oidc_client, make_token(keys, tenant)) == 200
    keys.add_key("k2")
    assert call(oidc_client, make_token(keys, tenant, kid="k2")) == 200
    del keys.keys["k1"]
    assert call(oidc_client, make_token(keys, tenant, kid="k2")) == 200


def test_oidc_settings_go_together(monkeypatch: pytest.MonkeyPatch) -> None:
    from wms.config import ConfigError, load_settings

    monkeypatch.setenv("WMS_OIDC_ISSUER", ISSUER)
    with pytest.raises(ConfigError, match="go together"):
        load_settings()

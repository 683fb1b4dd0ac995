"""A small OpenID Connect provider on loopback for the SSO tests (no network): discovery document,
authorize (consents at once for `provider.user`), token (an RS256 ID token, key generated here),
JWKS and userinfo. Knobs let a test send a wrong nonce or state, as an attacker or a broken IdP would."""
import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

CLIENT_ID = "mhsd-platform"
CLIENT_SECRET = "loopback-secret"


class OIDCProvider:
    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(4)
        self.user = {"sub": "u-1", "email": "clin@example.org", "groups": []}
        self.tamper_nonce = None  # put this nonce in the next ID token instead of the requested one
        self.tamper_state = None  # send this state back instead of the requested one
        self.tamper_audience = None  # issue the ID token to this client instead
        self.refuse_token = False  # answer the token request with invalid_grant
        self.codes: dict[str, dict] = {}
        self.access_tokens: dict[str, dict] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.issuer = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def discovery(self) -> dict:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
        }

    def jwks(self) -> dict:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}]}

    def _id_token(self, grant: dict) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.tamper_audience or CLIENT_ID, "iat": now, "exp": now + 300,
                  "nonce": self.tamper_nonce or grant["nonce"], **grant["user"]}
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})

    def _handler(self):
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _json(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/.well-known/openid-configuration":
                    return self._json(200, provider.discovery())
                if url.path == "/jwks":
                    return self._json(200, provider.jwks())
                if url.path == "/authorize":
                    if query.get("client_id") != CLIENT_ID or query.get("response_type") != "code":
                        return self._json(400, {"error": "invalid_request"})
                    code = secrets.token_urlsafe(16)
                    provider.codes[code] = {"nonce": query.get("nonce"), "user": dict(provider.user),
                                            "redirect_uri": query["redirect_uri"],
                                            "challenge": query.get("code_challenge")}
                    state = provider.tamper_state or query["state"]
                    self.send_response(302)
                    self.send_header("Location", f"{query['redirect_uri']}?{urlencode({'code': code, 'state': state})}")
                    self.end_headers()
                    return None
                if url.path == "/userinfo":
                    token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    grant = provider.access_tokens.get(token)
                    return self._json(200, grant["user"]) if grant else self._json(401, {"error": "invalid_token"})
                return self._json(404, {"error": "not_found"})

            def do_POST(self):
                if urlparse(self.path).path != "/token":
                    return self._json(404, {"error": "not_found"})
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                form = {k: v[0] for k, v in parse_qs(body).items()}
                grant = provider.codes.pop(form.get("code", ""), None)
                client_ok = form.get("client_id") == CLIENT_ID and form.get("client_secret") == CLIENT_SECRET
                same_redirect = grant is not None and form.get("redirect_uri") == grant["redirect_uri"]
                if provider.refuse_token or not (client_ok and same_redirect):
                    return self._json(400, {"error": "invalid_grant"})
                if grant["challenge"]:
                    digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
                    if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant["challenge"]:
                        return self._json(400, {"error": "invalid_grant", "error_description": "PKCE"})
                access = secrets.token_urlsafe(16)
                provider.access_tokens[access] = grant
                return self._json(200, {"access_token": access, "token_type": "Bearer", "expires_in": 300,
                                        "id_token": provider._id_token(grant)})

        return Handler

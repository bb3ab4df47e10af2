"""A stand-in for the Matrix Authentication Service, run by synapse.py --mas next to a Synapse that
delegates authentication to it (MSC3861: `matrix_authentication_service` in homeserver.yaml).

It answers the two calls Synapse makes (synapse/api/auth/mas.py, Synapse 1.163):

- GET  /.well-known/openid-configuration: the OAuth 2.0 server metadata (`issuer`,
  `account_management_uri` are the fields Synapse reads);
- POST /oauth2/introspect: form `token=...`, with `Authorization: Bearer <shared secret>`; the
  answer says whether the token is active and for which user and device (MSC2967 scopes).

and one call for the tests, standing in for a human's OAuth login:

- POST /_test/sessions {"localpart": "alice"}: provisions the user and a device on Synapse the way
  MAS does (/_synapse/mas/provision_user and /upsert_device, with the shared secret), mints an
  access token for them and answers {user_id, device_id, access_token}.
- GET  /_test/stats: how many introspections it answered, and how many of them were refused.

Tokens Synapse did not get from here (an appservice's as_token) never reach it: Synapse checks its
appservice registrations first. Sessions are kept in a JSON file, so a restarted Synapse with the
same workdir accepts the tokens handed out before.
"""

import json
import os
import secrets
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API_SCOPE = "urn:matrix:org.matrix.msc2967.client:api:*"
DEVICE_SCOPE_PREFIX = "urn:matrix:org.matrix.msc2967.client:device:"


class StandIn:
    def __init__(self, secret, server_name, sessions_path):
        self.secret = secret
        self.server_name = server_name
        self.synapse_url = None  # set once Synapse's port is known
        self.sessions_path = sessions_path
        self.lock = threading.Lock()
        self.sessions = {}
        self.introspections = 0
        self.refused = 0
        if os.path.exists(sessions_path):
            with open(sessions_path, encoding="utf-8") as f:
                self.sessions = json.load(f)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()

    def metadata(self):
        return {
            "issuer": self.url + "/",
            "account_management_uri": self.url + "/account",
            "authorization_endpoint": self.url + "/authorize",
            "token_endpoint": self.url + "/oauth2/token",
            "introspection_endpoint": self.url + "/oauth2/introspect",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
        }

    def introspect(self, token):
        with self.lock:
            self.introspections += 1
            session = self.sessions.get(token)
            if session is None:
                self.refused += 1
                return {"active": False}
        return {
            "active": True,
            "sub": session["sub"],
            "username": session["localpart"],
            "scope": f"{API_SCOPE} {DEVICE_SCOPE_PREFIX}{session['device_id']}",
            "token_type": "access_token",
        }

    def synapse_call(self, path, body):
        request = urllib.request.Request(
            self.synapse_url + path,
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.secret}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    def new_session(self, localpart):
        device_id = "STANDIN" + secrets.token_hex(4).upper()
        self.synapse_call("/_synapse/mas/provision_user", {"localpart": localpart})
        self.synapse_call("/_synapse/mas/upsert_device", {"localpart": localpart, "device_id": device_id})
        token = "mas_" + secrets.token_hex(24)
        session = {"localpart": localpart, "device_id": device_id, "sub": "sub-" + localpart}
        with self.lock:
            self.sessions[token] = session
            with open(self.sessions_path, "w", encoding="utf-8") as f:
                json.dump(self.sessions, f)
        return {
            "user_id": f"@{localpart}:{self.server_name}",
            "device_id": device_id,
            "access_token": token,
        }

    def _handler(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args):
                pass

            def answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def body(self):
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_GET(self):
                if self.path == "/.well-known/openid-configuration":
                    self.answer(200, standin.metadata())
                elif self.path == "/_test/stats":
                    with standin.lock:
                        stats = {"introspections": standin.introspections, "refused": standin.refused}
                    self.answer(200, stats)
                else:
                    self.answer(404, {"error": "not_found"})

            def do_POST(self):
                body = self.body()
                if self.path == "/oauth2/introspect":
                    if self.headers.get("Authorization") != f"Bearer {standin.secret}":
                        self.answer(401, {"error": "invalid_client"})
                        return
                    form = urllib.parse.parse_qs(body.decode())
                    self.answer(200, standin.introspect((form.get("token") or [""])[0]))
                elif self.path == "/_test/sessions":
                    localpart = json.loads(body or b"{}").get("localpart")
                    if not localpart:
                        self.answer(400, {"error": "give a localpart"})
                        return
                    try:
                        self.answer(200, standin.new_session(localpart))
                    except Exception as error:  # the test reads this sentence
                        self.answer(502, {"error": f"Synapse refused the provisioning: {error}"})
                else:
                    self.answer(404, {"error": "not_found"})

        return Handler

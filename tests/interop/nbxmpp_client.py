#!/usr/bin/python3
"""Interoperability client for Jaseur built on python3-nbxmpp (Gajim's library).

Usage:
    nbxmpp_client.py HOST PORT MODE JID PASSWORD PEER_JID [MECH]

MODE is "starttls" (the c2s port) or "direct" (XEP-0368 direct TLS port).
PEER_JID is where the test message goes; "self" means this session's own
full JID. MECH restricts SASL to one mechanism (nbxmpp otherwise offers
SCRAM-SHA-512, SCRAM-SHA-256, SCRAM-SHA-1 and PLAIN, best first; it never
uses -PLUS).

Environment:
    JASEUR_CA        certificate to trust (the server's self-signed one). It
                     is pinned through nbxmpp's accepted-certificates list,
                     which waives only the "unknown CA" error: a wrong host
                     name or an expired certificate still fails.
    INTEROP_TIMEOUT  seconds before giving up (default 15).
    INTEROP_DEBUG    if set, log the whole XML exchange to stderr.

Behaviour (same as slixmpp_client.py): log in, send initial presence, ping
the server, print "READY <full jid>", then send a chat message with a unique
body to PEER_JID every two seconds. Exit 0 on receiving that body back (own
message or a peer's echo) or any chat message from PEER_JID (echoed back to
its sender first). Exit non-zero with a reason on stderr otherwise.
"""

import logging
import os
import sys
import uuid

import gi

gi.require_version("Gio", "2.0")
gi.require_version("GLib", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

import nbxmpp  # noqa: E402
from nbxmpp.client import Client  # noqa: E402
from nbxmpp.const import ConnectionProtocol, ConnectionType  # noqa: E402
from nbxmpp.namespaces import Namespace  # noqa: E402
from nbxmpp.protocol import JID, Iq, Message, Presence  # noqa: E402
from nbxmpp.structs import StanzaHandler  # noqa: E402


def fail(text):
    print(f"nbxmpp_client: FAIL: {text}", file=sys.stderr, flush=True)


class Interop:
    def __init__(self, host, port, mode, jid, password, peer, mech, ca, timeout):
        self.jid = JID.from_string(jid)
        self.peer_arg = peer
        self.peer = None
        self.token = f"interop-nbxmpp-{uuid.uuid4().hex}"
        self.loop = GLib.MainLoop()
        self.code = None
        self.text = ""
        self.timeout = timeout

        client = Client()
        client.set_domain(self.jid.domain)
        client.set_username(self.jid.localpart)
        client.set_password(password)
        client.set_resource("nbxmpp")
        con_type = ConnectionType.DIRECT_TLS if mode == "direct" else ConnectionType.START_TLS
        client.set_connection_types([con_type])
        client.set_custom_host(f"{host}:{port}", ConnectionProtocol.TCP, con_type)
        if mech:
            client.set_mechs({mech})
        if ca:
            client.set_accepted_certificates([Gio.TlsCertificate.new_from_file(ca)])
        client.subscribe("connected", self.on_connected)
        client.subscribe("disconnected", self.on_disconnected)
        client.subscribe("connection-failed", self.on_connection_failed)
        if os.environ.get("INTEROP_DEBUG"):
            client.subscribe("stanza-sent", self.on_sent)
            client.subscribe("stanza-received", self.on_received)
        client.register_handler(StanzaHandler(name="message", callback=self.on_message))
        self.client = client

    # Signals ---------------------------------------------------------------

    def on_sent(self, _client, _signal, data):
        print(f"SEND: {data}", file=sys.stderr, flush=True)

    def on_received(self, _client, _signal, data):
        print(f"RECV: {data}", file=sys.stderr, flush=True)

    def finish(self, code, text):
        if self.code is not None:
            return
        self.code, self.text = code, text
        if code == 0 and self.client.state.name == "ACTIVE":
            # Close the stream properly; quit once the server closed its side.
            GLib.timeout_add(300, self._close)
            GLib.timeout_add_seconds(3, self._quit)
        else:
            self._quit()

    def _close(self):
        self.client.disconnect()
        return False

    def _quit(self):
        self.loop.quit()
        return False

    def on_connected(self, client, _signal):
        print(f"AUTH ok, bound {client.get_bound_jid()}", flush=True)
        client.send_stanza(Presence())
        ping = Iq("get", to=self.jid.domain)
        ping.addChild(name="ping", namespace=Namespace.PING)
        client.send_stanza(ping, callback=self.on_pong)

    def on_pong(self, client, stanza, **_user_data):
        if stanza is None or stanza.getType() != "result":
            self.finish(9, f"ping to the server failed: {stanza}")
            return
        bound = client.get_bound_jid()
        self.peer = bound if self.peer_arg == "self" else JID.from_string(self.peer_arg)
        print(f"READY {bound}", flush=True)
        self.send_token()
        GLib.timeout_add_seconds(2, self.send_token)

    def send_token(self):
        if self.code is not None:
            return False
        self.client.send_stanza(Message(to=self.peer, body=self.token, typ="chat"))
        return True

    def on_message(self, client, stanza, properties):
        if stanza.getType() == "error":
            self.finish(8, f"message bounced: {stanza}")
            return
        if stanza.getType() not in ("chat", "normal", None):
            return
        body = stanza.getBody()
        if not body:
            return
        sender = stanza.getFrom()
        if body == self.token:
            print(f"RECEIVED own message back from {sender}", flush=True)
            self.finish(0, "ok")
        elif self.peer is not None and sender is not None and sender.bare == self.peer.bare:
            print(f"RECEIVED {body!r} from {sender}", flush=True)
            client.send_stanza(Message(to=sender, body=body, typ="chat"))
            self.finish(0, "ok")

    def on_disconnected(self, client, _signal):
        domain, error, text = client.get_error()
        if self.code == 0:
            self._quit()
            return
        self.finish(4, f"disconnected before success: {domain} {error} {text or ''}"
                       f"{self.cert_info(client)}")

    def on_connection_failed(self, client, _signal):
        domain, error, text = client.get_error()
        self.finish(5, f"connection failed: {domain} {error} {text or ''}{self.cert_info(client)}")

    @staticmethod
    def cert_info(client):
        cert, errors = client.peer_certificate
        if errors:
            return f" (certificate errors: {errors})"
        return ""

    def on_timeout(self):
        self.finish(10, f"timed out after {self.timeout:g}s "
                        f"(stream state: {self.client.state}, error: {self.client.get_error()})")
        return False

    def run(self):
        GLib.timeout_add(int(self.timeout * 1000), self.on_timeout)
        self.client.connect()
        self.loop.run()
        return self.code if self.code is not None else 11, self.text


def main():
    if len(sys.argv) < 7:
        fail(__doc__)
        sys.exit(2)
    host, port, mode, jid, password, peer = sys.argv[1:7]
    mech = sys.argv[7] if len(sys.argv) > 7 and sys.argv[7] else None
    if mode not in ("starttls", "direct"):
        fail(f"mode must be starttls or direct, not {mode!r}")
        sys.exit(2)
    if os.environ.get("INTEROP_DEBUG"):
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    else:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    print(f"nbxmpp {nbxmpp.__version__}", flush=True)
    timeout = float(os.environ.get("INTEROP_TIMEOUT", "15"))
    code, text = Interop(host, port, mode, jid, password, peer, mech,
                         os.environ.get("JASEUR_CA"), timeout).run()
    if code == 0:
        print("SUCCESS", flush=True)
        sys.exit(0)
    fail(text)
    sys.exit(code)


if __name__ == "__main__":
    main()

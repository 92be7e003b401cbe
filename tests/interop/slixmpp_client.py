#!/usr/bin/python3
"""Interoperability client for Jaseur built on slixmpp (python3-slixmpp).

Usage:
    slixmpp_client.py HOST PORT MODE JID PASSWORD PEER_JID [MECH [no-cb]]

MODE is "starttls" (the c2s port) or "direct" (XEP-0368 direct TLS port).
PEER_JID is where the test message goes; "self" means this session's own
full JID (a message routed back to ourselves through the server).
MECH forces a SASL mechanism (e.g. PLAIN, SCRAM-SHA-256); without it
slixmpp picks one on its own. An empty MECH means "slixmpp's choice".

"no-cb" hides the TLS channel binding from slixmpp's SASL layer, so SCRAM
says "n" (client without channel binding). Without it, slixmpp 1.8.3 always
sends "y" on a non-PLUS SCRAM over TLS, even when the server offered -PLUS;
RFC 5802 section 6 makes the server refuse that as a downgrade, so forcing
a non-PLUS SCRAM mechanism needs "no-cb".

Environment:
    JASEUR_CA        certificate to trust (the server's self-signed one);
                     verification stays on, for the host name "localhost".
    INTEROP_TIMEOUT  seconds before giving up (default 15).
    INTEROP_DEBUG    if set, log the whole XML exchange to stderr.

The client logs in, sends initial presence, checks the server answers an
XEP-0199 ping (so the presence has been processed), prints "READY <full jid>"
and then sends a chat message with a unique body to PEER_JID, resending it
every two seconds. It succeeds (exit 0) when it receives either:
  * a chat message carrying exactly that body (our own message sent to
    ourselves, or a peer echoing it back), or
  * a chat message with a body from PEER_JID's bare JID; that message is
    echoed back to its sender before exiting, so two instances pointed at
    each other both succeed.
On a SASL failure, a disconnection, or the timeout it exits non-zero and
says why on stderr.
"""

import asyncio
import logging
import os
import ssl
import sys
import uuid

from slixmpp import ClientXMPP, JID


def die(code, text):
    print(f"slixmpp_client: FAIL: {text}", file=sys.stderr, flush=True)
    sys.exit(code)


class InteropClient(ClientXMPP):
    def __init__(self, jid, password, peer, mech, ca, no_cb):
        super().__init__(jid, password, sasl_mech=mech)
        if no_cb:
            mechs = self["feature_mechanisms"]
            default_credentials = mechs.sasl_callback

            def credentials(required, optional):
                creds = default_credentials(required, optional)
                if "channel_binding" in creds:
                    creds["channel_binding"] = None
                return creds

            mechs.sasl_callback = credentials
        self.peer_arg = peer
        self.peer = None
        self.token = f"interop-slixmpp-{uuid.uuid4().hex}"
        self.result = None  # (exit code, text) once decided
        self.done = asyncio.Event()
        self.sasl_failures = []
        self.resend_task = None
        if ca:
            # Trust exactly the server's certificate; keep hostname checks on.
            ctx = ssl.create_default_context(cafile=ca)
            ctx.check_hostname = True
            ctx.verify_mode = ssl.CERT_REQUIRED
            self.ssl_context = ctx
            self.ca_certs = ca
        self.register_plugin("xep_0199")  # XMPP Ping
        self.add_event_handler("session_start", self.on_session_start)
        self.add_event_handler("message", self.on_message)
        # Only record failures: slixmpp tries the next mechanism by itself
        # (the SCRAM-SHA-256-PLUS -> SCRAM-SHA-256 fallback needs that).
        self.add_event_handler("failed_auth", self.on_failed_auth)
        self.add_event_handler("no_auth", self.on_no_auth)
        self.add_event_handler("auth_success", self.on_auth_success)
        self.add_event_handler("disconnected", self.on_disconnected)
        self.add_event_handler("connection_failed", self.on_connection_failed)
        self.add_event_handler("stream_error", self.on_stream_error)
        self.add_event_handler("ssl_invalid_chain", self.on_bad_cert)
        self.add_event_handler("message_error", self.on_message_error)

    def finish(self, code, text):
        if self.result is None:
            self.result = (code, text)
            self.done.set()

    def on_failed_auth(self, _event):
        mech = getattr(self["feature_mechanisms"], "mech", None)
        name = getattr(mech, "name", "?") if mech else "?"
        self.sasl_failures.append(name)
        print(f"slixmpp_client: SASL mechanism {name} failed (slixmpp may retry)",
              file=sys.stderr, flush=True)

    def on_no_auth(self, _event):
        self.finish(3, f"no SASL mechanism left; failures: {self.sasl_failures}")

    def on_auth_success(self, _event):
        mech = self["feature_mechanisms"].mech
        print(f"AUTH {mech.name}", flush=True)

    def on_disconnected(self, reason):
        self.finish(4, f"disconnected before success: {reason}")

    def on_connection_failed(self, error):
        self.finish(5, f"connection failed: {error}")

    def on_stream_error(self, error):
        self.finish(6, f"stream error: {error}")

    def on_bad_cert(self, error):
        self.finish(7, f"certificate rejected: {error}")

    def on_message_error(self, msg):
        self.finish(8, f"message bounced: {msg}")

    async def on_session_start(self, _event):
        self.send_presence()
        try:
            await self["xep_0199"].ping(JID(self.boundjid.host), timeout=10)
        except Exception as e:  # noqa: BLE001 - any failure is fatal here
            self.finish(9, f"ping to the server failed: {e!r}")
            return
        if self.peer_arg == "self":
            self.peer = JID(self.boundjid.full)
        else:
            self.peer = JID(self.peer_arg)
        print(f"READY {self.boundjid.full}", flush=True)
        self.resend_task = asyncio.ensure_future(self.send_loop())

    async def send_loop(self):
        while self.result is None:
            self.send_message(mto=self.peer, mbody=self.token, mtype="chat")
            await asyncio.sleep(2)

    def on_message(self, msg):
        if msg["type"] not in ("chat", "normal"):
            return
        body = msg["body"]
        if not body:
            return
        if body == self.token:
            print(f"RECEIVED own message back from {msg['from']}", flush=True)
            self.finish(0, "ok")
            return
        if self.peer is not None and msg["from"].bare == self.peer.bare:
            print(f"RECEIVED {body!r} from {msg['from']}", flush=True)
            # Echo it so a peer instance can succeed too.
            self.send_message(mto=msg["from"], mbody=body, mtype="chat")
            self.finish(0, "ok")


async def run(args):
    host, port, mode, jid, password, peer = args[:6]
    mech = args[6] if len(args) > 6 and args[6] else None
    no_cb = len(args) > 7 and args[7] == "no-cb"
    if len(args) > 7 and not no_cb:
        die(2, f"unknown option {args[7]!r} (expected no-cb)")
    if mode not in ("starttls", "direct"):
        die(2, f"mode must be starttls or direct, not {mode!r}")
    timeout = float(os.environ.get("INTEROP_TIMEOUT", "15"))
    xmpp = InteropClient(jid, password, peer, mech, os.environ.get("JASEUR_CA"), no_cb)
    if mode == "direct":
        xmpp.connect((host, int(port)), use_ssl=True, disable_starttls=True)
    else:
        xmpp.connect((host, int(port)), use_ssl=False, force_starttls=True)
    try:
        await asyncio.wait_for(xmpp.done.wait(), timeout)
    except asyncio.TimeoutError:
        xmpp.finish(10, f"timed out after {timeout:g}s (bound jid: {xmpp.boundjid.full or 'none'}, "
                        f"sasl failures: {xmpp.sasl_failures})")
    code, text = xmpp.result
    if xmpp.resend_task is not None:
        xmpp.resend_task.cancel()
    if code == 0:
        # Let the echo (if any) leave before closing the stream.
        await asyncio.sleep(0.3)
        xmpp.del_event_handler("disconnected", xmpp.on_disconnected)
        try:
            await asyncio.wait_for(xmpp.disconnect(wait=2), 3)
        except asyncio.TimeoutError:
            pass
    return code, text


def main():
    if len(sys.argv) < 7:
        die(2, __doc__)
    if os.environ.get("INTEROP_DEBUG"):
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    else:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    code, text = loop.run_until_complete(run(sys.argv[1:]))
    # slixmpp leaves helper tasks behind; end them quietly.
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.close()
    if code == 0:
        print("SUCCESS", flush=True)
        sys.exit(0)
    die(code, text)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""A scripted slixmpp (python3-slixmpp) contact for Jaseur's IM interop tests.

Usage:
    slixmpp_peer.py HOST PORT MODE JID PASSWORD ACTION PEER_JID [ARGS...]

MODE is "starttls" (the c2s port) or "direct" (XEP-0368 direct TLS port).
PEER_JID is a bare JID. ACTION is one of:

  befriend PEER BYE
      Log in, get the roster, become available. When PEER asks to subscribe
      to our presence, approve it ("subscribed") and ask back ("subscribe").
      Succeed once PEER's available presence has arrived (the mutual
      subscription is complete) and PEER sent a chat message with body BYE.

  chat PEER EXPECT REPLY
      Log in, become available. Wait for a chat message from PEER whose body
      is EXPECT, then answer REPLY to PEER's bare JID and succeed.

  offline PEER EXPECT
      Log in and get the roster; ping the server (a message that arrived now
      would have been delivered before initial presence: a failure); then
      become available and wait for the message from PEER with body EXPECT.
      It must carry an XEP-0203 delay stamp, in the past and less than ten
      minutes old. Prints "DELAY <ISO stamp> from=<delay from>".

Every action prints "READY <full jid>" once its session is up, and one line
per event it observes; on success it prints "SUCCESS" and exits 0, on a
failure or the timeout it exits non-zero and says why on stderr.

Environment:
    JASEUR_CA        certificate to trust (the server's self-signed one);
                     verification stays on, for the host name "localhost".
    INTEROP_TIMEOUT  seconds before giving up (default 30).
    INTEROP_DEBUG    if set, log the whole XML exchange to stderr.
"""

import asyncio
import datetime
import logging
import os
import ssl
import sys

from slixmpp import JID, ClientXMPP


def say(text):
    print(text, flush=True)


class Peer(ClientXMPP):
    def __init__(self, jid, password, ca, action, args):
        super().__init__(jid, password)
        self.action = action
        self.peer = JID(args[0])
        self.args = args[1:]
        self.result = None  # (exit code, text) once decided
        self.done = asyncio.Event()
        self.available = False
        # befriend
        self.approved = False
        self.peer_presence = False
        self.bye = False
        # The subscription is handled by hand below, not by slixmpp's roster.
        self.auto_authorize = None
        self.auto_subscribe = False
        if ca:
            ctx = ssl.create_default_context(cafile=ca)
            ctx.check_hostname = True
            ctx.verify_mode = ssl.CERT_REQUIRED
            self.ssl_context = ctx
            self.ca_certs = ca
        self.register_plugin("xep_0199")  # XMPP Ping
        self.register_plugin("xep_0203")  # Delayed Delivery
        self.add_event_handler("session_start", self.on_session_start)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("presence_subscribe", self.on_subscribe)
        self.add_event_handler("presence_subscribed", self.on_presence)
        self.add_event_handler("presence_available", self.on_presence)
        self.add_event_handler("roster_update", self.on_roster_push)
        self.add_event_handler("no_auth", lambda _e: self.finish(3, "authentication failed"))
        self.add_event_handler("disconnected", self.on_disconnected)
        self.add_event_handler("connection_failed",
                               lambda e: self.finish(5, f"connection failed: {e}"))
        self.add_event_handler("stream_error", lambda e: self.finish(6, f"stream error: {e}"))
        self.add_event_handler("ssl_invalid_chain",
                               lambda e: self.finish(7, f"certificate rejected: {e}"))
        self.add_event_handler("message_error",
                               lambda m: self.finish(8, f"message bounced: {m}"))

    def finish(self, code, text):
        if self.result is None:
            self.result = (code, text)
            self.done.set()

    def on_disconnected(self, reason):
        self.finish(4, f"disconnected before success: {reason}")

    async def on_session_start(self, _event):
        try:
            await self.get_roster(timeout=10)
            await self["xep_0199"].ping(JID(self.boundjid.host), timeout=10)
        except Exception as e:  # noqa: BLE001 - any failure is fatal here
            self.finish(9, f"roster or ping failed: {e!r}")
            return
        self.available = True
        self.send_presence()
        # A second ping: once it is answered, the server has handled the presence.
        try:
            await self["xep_0199"].ping(JID(self.boundjid.host), timeout=10)
        except Exception as e:  # noqa: BLE001
            self.finish(9, f"ping after presence failed: {e!r}")
            return
        say(f"READY {self.boundjid.full}")

    def on_roster_push(self, iq):
        for jid, item in iq["roster"]["items"].items():
            say(f"ROSTER-PUSH jid={jid} subscription={item['subscription']} "
                f"ask={item['ask'] or '-'}")

    def on_subscribe(self, pres):
        say(f"SUBSCRIBE from={pres['from']}")
        if self.action != "befriend" or pres["from"].bare != self.peer.bare:
            return
        if not self.approved:
            self.approved = True
            self.send_presence(pto=self.peer.bare, ptype="subscribed")
            self.send_presence(pto=self.peer.bare, ptype="subscribe")
            say(f"APPROVED {self.peer.bare} and asked back")

    def on_presence(self, pres):
        say(f"PRESENCE type={pres['type']} from={pres['from']}")
        if (self.action == "befriend" and pres["type"] in ("available", "chat", "away", "xa", "dnd")
                and pres["from"].bare == self.peer.bare and pres["from"].resource):
            self.peer_presence = True
            self.check_befriend()

    def check_befriend(self):
        if self.approved and self.peer_presence and self.bye:
            self.finish(0, "ok")

    def on_message(self, msg):
        if msg["type"] not in ("chat", "normal"):
            return
        body = msg["body"]
        if not body:
            return
        delay = msg.xml.find("{urn:xmpp:delay}delay")
        stamp = msg["delay"]["stamp"] if delay is not None else None
        say(f"MESSAGE from={msg['from']} body={body!r} delay={stamp.isoformat() if stamp else '-'}")
        if msg["from"].bare != self.peer.bare:
            return
        if self.action == "befriend":
            if body == self.args[0]:
                self.bye = True
                self.check_befriend()
        elif self.action == "chat":
            if body == self.args[0]:
                self.send_message(mto=self.peer.bare, mbody=self.args[1], mtype="chat")
                say(f"REPLIED {self.args[1]!r}")
                self.finish(0, "ok")
        elif self.action == "offline":
            if body != self.args[0]:
                return
            if not self.available:
                self.finish(12, "the offline message arrived before initial presence")
                return
            if not stamp:
                self.finish(13, f"no XEP-0203 delay on the offline message: {msg}")
                return
            now = datetime.datetime.now(datetime.timezone.utc)
            if stamp.tzinfo is None:
                self.finish(14, f"delay stamp without a time zone: {stamp}")
                return
            age = (now - stamp).total_seconds()
            if not -5 <= age <= 600:
                self.finish(14, f"delay stamp {stamp.isoformat()} is {age:.0f}s old")
                return
            say(f"DELAY {stamp.isoformat()} from={delay.get('from') or '-'}")
            self.finish(0, "ok")


async def run(argv):
    host, port, mode, jid, password, action = argv[:6]
    args = argv[6:]
    wanted = {"befriend": 2, "chat": 3, "offline": 2}
    if action not in wanted or len(args) != wanted[action]:
        print(__doc__, file=sys.stderr)
        return 2, f"bad arguments: {argv}"
    if mode not in ("starttls", "direct"):
        return 2, f"mode must be starttls or direct, not {mode!r}"
    timeout = float(os.environ.get("INTEROP_TIMEOUT", "30"))
    xmpp = Peer(jid, password, os.environ.get("JASEUR_CA"), action, args)
    if mode == "direct":
        xmpp.connect((host, int(port)), use_ssl=True, disable_starttls=True)
    else:
        xmpp.connect((host, int(port)), use_ssl=False, force_starttls=True)
    try:
        await asyncio.wait_for(xmpp.done.wait(), timeout)
    except asyncio.TimeoutError:
        xmpp.finish(10, f"timed out after {timeout:g}s (action {action}, bound jid "
                        f"{xmpp.boundjid.full or 'none'}, approved={xmpp.approved}, "
                        f"peer presence={xmpp.peer_presence}, bye={xmpp.bye})")
    code, text = xmpp.result
    if code == 0:
        # Let the last stanza leave, then close the stream properly.
        await asyncio.sleep(0.3)
        xmpp.del_event_handler("disconnected", xmpp.on_disconnected)
        try:
            await asyncio.wait_for(xmpp.disconnect(wait=2), 3)
        except asyncio.TimeoutError:
            pass
    return code, text


def main():
    if len(sys.argv) < 8:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    if os.environ.get("INTEROP_DEBUG"):
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    else:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    code, text = loop.run_until_complete(run(sys.argv[1:]))
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.close()
    if code == 0:
        say("SUCCESS")
        sys.exit(0)
    print(f"slixmpp_peer: FAIL: {text}", file=sys.stderr, flush=True)
    sys.exit(code)


if __name__ == "__main__":
    main()

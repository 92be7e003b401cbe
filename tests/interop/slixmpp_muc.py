#!/usr/bin/python3
"""A scripted slixmpp (python3-slixmpp) room occupant for Jaseur's MUC
interop tests, using slixmpp's XEP-0045 plugin.

Usage:
    slixmpp_muc.py HOST PORT MODE JID PASSWORD ACTION [ARGS...]

MODE is "starttls" (the c2s port) or "direct" (XEP-0368 direct TLS port).
ACTION is one of:

  chat ROOM NICK PEER_NICK EXPECT REPLY
      Join ROOM as NICK, creating it: an instant room (empty submit form)
      when the join answers with status 201. Print "READY". Wait for a
      groupchat message from ROOM/PEER_NICK whose body is EXPECT, then send
      REPLY to the room, and succeed once the room reflects REPLY back
      (from ROOM/NICK, with a XEP-0359 stanza-id by the room).

  rooms PUBLIC NAME HIDDEN
      Create two rooms through the owner configuration form, as Gajim's
      room creation dialog does (request the form, fill it in, submit):
      PUBLIC, named NAME, public and persistent; HIDDEN, persistent and not
      public (muc#roomconfig_publicroom = 0). Print "CONFIGURED <room>" for
      each, then leave both (persistent rooms stay) and succeed.

It prints one line per event (OCCUPANT, MESSAGE, ...); on success
"SUCCESS" and exit 0, on a failure or the timeout a non-zero exit and the
reason on stderr ("slixmpp_muc: FAIL: ...").

Environment:
    JASEUR_CA        certificate to trust (the server's self-signed one).
    INTEROP_TIMEOUT  seconds before giving up (default 30).
    INTEROP_DEBUG    if set, log the whole XML exchange to stderr.
"""

import asyncio
import logging
import os
import ssl
import sys

from slixmpp import JID, ClientXMPP

ROOMCONFIG = "http://jabber.org/protocol/muc#roomconfig"
SID = "{urn:xmpp:sid:0}stanza-id"


def say(text):
    print(text, flush=True)


class Occupant(ClientXMPP):
    def __init__(self, jid, password, ca, action, args):
        super().__init__(jid, password)
        self.action = action
        self.args = args
        self.result = None  # (exit code, text) once decided
        self.done = asyncio.Event()
        self.replied = False
        if ca:
            ctx = ssl.create_default_context(cafile=ca)
            ctx.check_hostname = True
            ctx.verify_mode = ssl.CERT_REQUIRED
            self.ssl_context = ctx
            self.ca_certs = ca
        self.register_plugin("xep_0004")  # Data forms
        self.register_plugin("xep_0045")  # Multi-User Chat
        self.register_plugin("xep_0199")  # XMPP Ping
        self.add_event_handler("session_start", self.on_session_start)
        self.add_event_handler("groupchat_message", self.on_groupchat)
        self.add_event_handler("groupchat_message_error",
                               lambda m: self.finish(8, f"groupchat message bounced: {m}"))
        self.add_event_handler("groupchat_presence", self.on_muc_presence)
        self.add_event_handler("no_auth", lambda _e: self.finish(3, "authentication failed"))
        self.add_event_handler("disconnected", self.on_disconnected)
        self.add_event_handler("connection_failed",
                               lambda e: self.finish(5, f"connection failed: {e}"))
        self.add_event_handler("stream_error", lambda e: self.finish(6, f"stream error: {e}"))
        self.add_event_handler("ssl_invalid_chain",
                               lambda e: self.finish(7, f"certificate rejected: {e}"))

    def finish(self, code, text):
        if self.result is None:
            self.result = (code, text)
            self.done.set()

    def on_disconnected(self, reason):
        self.finish(4, f"disconnected before success: {reason}")

    async def join(self, room, nick):
        """Join ROOM as NICK; returns the status codes of the self-presence."""
        pres, subject, _occupants, _history = await self["xep_0045"].join_muc_wait(
            JID(room), nick, maxstanzas=0, timeout=15)
        codes = sorted(pres["muc"]["status_codes"])
        say(f"JOINED {pres['from']} codes={','.join(map(str, codes)) or '-'} "
            f"affiliation={pres['muc']['affiliation']} role={pres['muc']['role']} "
            f"subject={subject['subject']!r}")
        return codes

    async def on_session_start(self, _event):
        try:
            await self["xep_0199"].ping(JID(self.boundjid.host), timeout=10)
            self.send_presence()
            if self.action == "chat":
                await self.start_chat()
            else:
                await self.create_rooms()
        except Exception as e:  # noqa: BLE001 - any failure is fatal here
            self.finish(9, f"{self.action} failed: {e!r}")

    async def start_chat(self):
        room, nick = self.args[0], self.args[1]
        codes = await self.join(room, nick)
        if 110 not in codes:
            self.finish(12, f"no status 110 in the self-presence: {codes}")
            return
        if 201 in codes:
            # An instant room: accept the default configuration.
            form = self["xep_0004"].make_form(ftype="submit")
            await self["xep_0045"].set_room_config(JID(room), form, timeout=10)
            say(f"CONFIGURED {room} instant")
        say(f"READY {self.boundjid.full}")

    async def create_rooms(self):
        public, name, hidden = self.args
        for room, values in (
            (public, {"muc#roomconfig_roomname": name,
                      "muc#roomconfig_publicroom": True,
                      "muc#roomconfig_persistentroom": True}),
            (hidden, {"muc#roomconfig_publicroom": False,
                      "muc#roomconfig_persistentroom": True}),
        ):
            codes = await self.join(room, "creator")
            if 201 not in codes:
                self.finish(12, f"{room} was not created by this join: codes {codes}")
                return
            form = await self["xep_0045"].get_room_config(JID(room), timeout=10)
            fields = form.get_fields()
            form_type = fields["FORM_TYPE"]["value"] if "FORM_TYPE" in fields else None
            if isinstance(form_type, list):  # slixmpp reads hidden fields as lists
                form_type = form_type[0] if form_type else None
            if form_type != ROOMCONFIG:
                self.finish(13, f"the configuration form of {room} has no FORM_TYPE {ROOMCONFIG}")
                return
            for var, value in values.items():
                if var not in fields:
                    self.finish(13, f"the configuration form of {room} has no field {var}")
                    return
                fields[var]["value"] = value
            await self["xep_0045"].set_room_config(JID(room), form, timeout=10)
            say(f"CONFIGURED {room}")
        for room in (public, hidden):
            self["xep_0045"].leave_muc(JID(room), "creator")
        # Once the server answers a ping, it has handled both departures.
        await self["xep_0199"].ping(JID(self.boundjid.host), timeout=10)
        say(f"READY {self.boundjid.full}")
        self.finish(0, "ok")

    def on_muc_presence(self, pres):
        say(f"OCCUPANT from={pres['from']} type={pres['type']}")

    def on_groupchat(self, msg):
        body = msg["body"]
        sender = msg["from"]
        sid = msg.xml.find(SID)
        by = sid.get("by") if sid is not None else None
        say(f"MESSAGE from={sender} body={body!r} stanza-id-by={by or '-'}")
        if self.action != "chat":
            return
        room, nick, peer_nick, expect, reply = self.args
        if sender.bare != JID(room).bare:
            return
        if sender.resource == peer_nick and body == expect and not self.replied:
            self.replied = True
            self.send_message(mto=JID(room), mbody=reply, mtype="groupchat")
            say(f"REPLIED {reply!r}")
        elif sender.resource == nick and body == reply and self.replied:
            if by != JID(room).bare:
                self.finish(14, f"the reflected message has no stanza-id by the room: {msg}")
                return
            say("REFLECTED")
            self.finish(0, "ok")


async def run(argv):
    host, port, mode, jid, password, action = argv[:6]
    args = argv[6:]
    wanted = {"chat": 5, "rooms": 3}
    if action not in wanted or len(args) != wanted[action]:
        print(__doc__, file=sys.stderr)
        return 2, f"bad arguments: {argv}"
    if mode not in ("starttls", "direct"):
        return 2, f"mode must be starttls or direct, not {mode!r}"
    timeout = float(os.environ.get("INTEROP_TIMEOUT", "30"))
    xmpp = Occupant(jid, password, os.environ.get("JASEUR_CA"), action, args)
    if mode == "direct":
        xmpp.connect((host, int(port)), use_ssl=True, disable_starttls=True)
    else:
        xmpp.connect((host, int(port)), use_ssl=False, force_starttls=True)
    try:
        await asyncio.wait_for(xmpp.done.wait(), timeout)
    except asyncio.TimeoutError:
        xmpp.finish(10, f"timed out after {timeout:g}s (action {action}, bound jid "
                        f"{xmpp.boundjid.full or 'none'}, replied={xmpp.replied})")
    code, text = xmpp.result
    if code == 0:
        await asyncio.sleep(0.3)
        xmpp.del_event_handler("disconnected", xmpp.on_disconnected)
        try:
            await asyncio.wait_for(xmpp.disconnect(wait=2), 3)
        except asyncio.TimeoutError:
            pass
    return code, text


def main():
    if len(sys.argv) < 7:
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
    print(f"slixmpp_muc: FAIL: {text}", file=sys.stderr, flush=True)
    sys.exit(code)


if __name__ == "__main__":
    main()

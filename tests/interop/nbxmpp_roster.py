#!/usr/bin/python3
"""Roster and subscription interop client for Jaseur on python3-nbxmpp (Gajim's library).

Usage:
    nbxmpp_roster.py HOST PORT MODE JID PASSWORD CONTACT NAME GROUP BYE [versioning]

MODE is "starttls" (the c2s port) or "direct" (XEP-0368 direct TLS port).
CONTACT is a bare JID that is online and approves subscription requests
(tests/interop/slixmpp_peer.py befriend), asking back in return.

What it does, as Gajim does it with nbxmpp's Roster and BasePresence
modules (RFC 6121):
  1. log in, request the roster (must not hold CONTACT yet), send initial presence;
  2. add CONTACT with the nickname NAME in the group GROUP (roster set); the
     roster push for it, as nbxmpp parses it, must carry NAME, exactly
     {GROUP} and subscription "none";
  3. send a subscription request to CONTACT;
  4. CONTACT approves: a push with subscription "to" must come (keeping NAME
     and GROUP), and CONTACT's available presence from one of its resources;
  5. CONTACT asks back: approve it; a push with subscription "both" must come;
  6. request the whole roster again: CONTACT must be there with NAME, GROUP
     and "both"; then send a chat message with body BYE to CONTACT and succeed.
Every roster push must keep NAME and GROUP. With "versioning", the server
must also advertise roster versioning (RFC 6121 2.6) so that nbxmpp uses it:
the roster results and pushes must carry a version, and a last request
with the newest version must come back empty (nothing changed since).
One line is printed per event
("ROSTER ...", "PUSH ...", "PRESENCE ...", ...), "SUCCESS" at the end.

Environment:
    JASEUR_CA        certificate to trust (the server's self-signed one),
                     pinned through nbxmpp's accepted-certificates list.
    INTEROP_TIMEOUT  seconds before giving up (default 30).
    INTEROP_DEBUG    if set, log the whole XML exchange to stderr.
"""

import logging
import os
import sys

import gi

gi.require_version("Gio", "2.0")
gi.require_version("GLib", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

import nbxmpp  # noqa: E402
from nbxmpp.client import Client  # noqa: E402
from nbxmpp.const import ConnectionProtocol, ConnectionType, PresenceType  # noqa: E402
from nbxmpp.namespaces import Namespace  # noqa: E402
from nbxmpp.protocol import JID, Message, NodeProcessed, Presence  # noqa: E402
from nbxmpp.structs import StanzaHandler  # noqa: E402


def say(text):
    print(text, flush=True)


def describe(item):
    groups = ",".join(sorted(item.groups)) or "-"
    return (f"jid={item.jid} name={item.name!r} groups={groups} "
            f"subscription={item.subscription} ask={item.ask or '-'}")


class RosterInterop:
    def __init__(self, host, port, mode, jid, password, contact, name, group, bye, versioning,
                 ca, timeout):
        self.jid = JID.from_string(jid)
        self.contact = JID.from_string(contact)
        self.name = name
        self.group = group
        self.bye = bye
        self.versioning = versioning
        self.last_version = None
        self.timeout = timeout
        self.loop = GLib.MainLoop()
        self.code = None
        self.text = ""
        # Progress.
        self.step = "login"
        self.set_acked = False
        self.added_push = False
        self.subscribe_sent = False
        self.subscriptions = []  # subscription values seen in pushes, in order
        self.contact_presence = None
        self.approved_back = False
        self.final_requested = False

        client = Client()
        client.set_domain(self.jid.domain)
        client.set_username(self.jid.localpart)
        client.set_password(password)
        client.set_resource("gajim-like")
        con_type = ConnectionType.DIRECT_TLS if mode == "direct" else ConnectionType.START_TLS
        client.set_connection_types([con_type])
        client.set_custom_host(f"{host}:{port}", ConnectionProtocol.TCP, con_type)
        if ca:
            client.set_accepted_certificates([Gio.TlsCertificate.new_from_file(ca)])
        client.subscribe("connected", self.on_connected)
        client.subscribe("disconnected", self.on_disconnected)
        client.subscribe("connection-failed", self.on_connection_failed)
        if os.environ.get("INTEROP_DEBUG"):
            client.subscribe("stanza-sent", self.on_sent)
            client.subscribe("stanza-received", self.on_received)
        # After nbxmpp's own Roster module (priority 15) parsed the push and
        # acknowledged it, the way Gajim receives roster pushes.
        client.register_handler(StanzaHandler(name="iq", callback=self.on_roster_push,
                                              typ="set", ns=Namespace.ROSTER))
        client.register_handler(StanzaHandler(name="presence", callback=self.on_presence))
        self.client = client

    # Plumbing --------------------------------------------------------------

    def on_sent(self, _client, _signal, data):
        print(f"SEND: {data}", file=sys.stderr, flush=True)

    def on_received(self, _client, _signal, data):
        print(f"RECV: {data}", file=sys.stderr, flush=True)

    def finish(self, code, text):
        if self.code is not None:
            return
        self.code, self.text = code, text
        if code == 0 and self.client.state.name == "ACTIVE":
            GLib.timeout_add(300, self._close)
            GLib.timeout_add_seconds(3, self._quit)
        else:
            self._quit()

    def fail(self, text):
        self.finish(20, f"at step {self.step}: {text}")

    def _close(self):
        self.client.disconnect()
        return False

    def _quit(self):
        self.loop.quit()
        return False

    def on_disconnected(self, client, _signal):
        if self.code == 0:
            self._quit()
            return
        domain, error, text = client.get_error()
        self.finish(4, f"disconnected at step {self.step}: {domain} {error} {text or ''}")

    def on_connection_failed(self, client, _signal):
        domain, error, text = client.get_error()
        cert, errors = client.peer_certificate
        self.finish(5, f"connection failed: {domain} {error} {text or ''} "
                       f"(certificate errors: {errors})")

    def on_timeout(self):
        self.finish(10, f"timed out after {self.timeout:g}s at step {self.step} "
                        f"(pushes seen: {self.subscriptions}, contact presence: "
                        f"{self.contact_presence}, stream state: {self.client.state})")
        return False

    def roster(self):
        return self.client.get_module("Roster")

    def presence(self):
        return self.client.get_module("BasePresence")

    # Steps -----------------------------------------------------------------

    def on_connected(self, client, _signal):
        say(f"AUTH ok, bound {client.get_bound_jid()}")
        self.step = "initial roster"
        self.roster().request_roster(callback=self.on_initial_roster)

    def on_initial_roster(self, task):
        try:
            data = task.finish()
        except Exception as e:  # noqa: BLE001 - any error fails the run
            self.fail(f"roster request failed: {e}")
            return
        items = data.items or []
        say(f"ROSTER version={data.version!r} items={len(items)}")
        if self.versioning:
            if not self.client.features.has_roster_version():
                self.fail("the server does not advertise roster versioning (no <ver "
                          "xmlns='urn:xmpp:features:rosterver'/> stream feature, RFC 6121 "
                          "2.6.1), so nbxmpp does not use it")
                return
            if data.version is None:
                self.fail("the roster result has no ver attribute")
                return
        for item in items:
            say(f"ROSTER-ITEM {describe(item)}")
            if item.jid.bare == self.contact.bare:
                self.fail(f"{self.contact} already in a fresh account's roster")
                return
        self.client.send_stanza(Presence())
        self.step = "roster set"
        self.roster().set_item(self.contact.bare, self.name, [self.group],
                               callback=self.on_set_result)

    def on_set_result(self, task):
        try:
            task.finish()
        except Exception as e:  # noqa: BLE001
            self.fail(f"roster set refused: {e}")
            return
        say("SET ok")
        self.set_acked = True
        self.maybe_subscribe()

    def on_roster_push(self, _client, _stanza, properties):
        if properties.roster is None:
            self.fail("nbxmpp could not parse a roster push")
            raise NodeProcessed
        item = properties.roster.item
        say(f"PUSH version={properties.roster.version!r} {describe(item)}")
        if self.versioning:
            if properties.roster.version is None:
                self.fail(f"roster push without a version: {describe(item)}")
                raise NodeProcessed
            self.last_version = properties.roster.version
        if item.jid.bare != self.contact.bare:
            raise NodeProcessed
        if item.name != self.name or item.groups != {self.group}:
            self.fail(f"push lost the nickname or group: {describe(item)}; "
                      f"expected name={self.name!r} groups={self.group}")
            raise NodeProcessed
        if not self.added_push:
            if item.subscription != "none":
                self.fail(f"the first push should have subscription none: {describe(item)}")
                raise NodeProcessed
            self.added_push = True
            self.maybe_subscribe()
        elif item.subscription in ("to", "both"):
            if not self.subscriptions or self.subscriptions[-1] != item.subscription:
                self.subscriptions.append(item.subscription)
            self.check()
        raise NodeProcessed

    def maybe_subscribe(self):
        if self.set_acked and self.added_push and not self.subscribe_sent:
            self.subscribe_sent = True
            self.step = "subscription request"
            self.presence().subscribe(self.contact.bare)
            say(f"SUBSCRIBE sent to {self.contact.bare}")

    def on_presence(self, _client, stanza, properties):
        sender = properties.jid
        say(f"PRESENCE type={properties.type.value or 'available'} from={sender}")
        if sender is None or sender.bare != self.contact.bare:
            return
        if properties.type == PresenceType.SUBSCRIBE:
            if not self.approved_back:
                self.approved_back = True
                self.presence().subscribed(self.contact.bare)
                say(f"APPROVED {self.contact.bare}")
            raise NodeProcessed
        if properties.type.is_available and sender.resource:
            self.contact_presence = str(sender)
            self.check()
        raise NodeProcessed

    def check(self):
        if self.final_requested:
            return
        if self.subscriptions and self.subscriptions[0] != "to":
            self.fail(f"expected a push with subscription 'to' first, got {self.subscriptions}")
            return
        self.step = "subscription approved"
        if self.contact_presence and self.subscriptions[-1:] == ["both"]:
            self.final_requested = True
            self.step = "final roster"
            self.roster().request_roster(callback=self.on_final_roster)

    def on_final_roster(self, task):
        try:
            data = task.finish()
        except Exception as e:  # noqa: BLE001
            self.fail(f"final roster request failed: {e}")
            return
        items = data.items or []
        say(f"FINAL-ROSTER version={data.version!r} items={len(items)}")
        mine = [i for i in items if i.jid.bare == self.contact.bare]
        for item in items:
            say(f"FINAL-ITEM {describe(item)}")
        if len(mine) != 1:
            self.fail(f"{self.contact} is not in the roster exactly once: {items}")
            return
        item = mine[0]
        if (item.name, item.groups, item.subscription) != (self.name, {self.group}, "both"):
            self.fail(f"final roster item is wrong: {describe(item)}")
            return
        if self.versioning:
            self.step = "versioned roster"
            say(f"ROSTER-GET ver={self.last_version!r}")
            self.roster().request_roster(version=self.last_version,
                                         callback=self.on_versioned_roster)
            return
        self.say_bye()

    def on_versioned_roster(self, task):
        try:
            data = task.finish()
        except Exception as e:  # noqa: BLE001
            self.fail(f"versioned roster request failed: {e}")
            return
        say(f"VERSIONED-ROSTER version={data.version!r} items={data.items}")
        if data.items:
            self.fail(f"nothing changed since version {self.last_version!r}, "
                      f"yet the server sent items: {data.items}")
            return
        self.say_bye()

    def say_bye(self):
        self.step = "bye"
        self.client.send_stanza(Message(to=self.contact, body=self.bye, typ="chat"))
        say(f"SENT {self.bye!r}")
        self.finish(0, "ok")

    def run(self):
        GLib.timeout_add(int(self.timeout * 1000), self.on_timeout)
        self.client.connect()
        self.loop.run()
        return self.code if self.code is not None else 11, self.text


def main():
    if len(sys.argv) not in (10, 11) or sys.argv[10:] not in ([], ["versioning"]):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    host, port, mode, jid, password, contact, name, group, bye = sys.argv[1:10]
    versioning = sys.argv[10:] == ["versioning"]
    if mode not in ("starttls", "direct"):
        print(f"mode must be starttls or direct, not {mode!r}", file=sys.stderr)
        sys.exit(2)
    if os.environ.get("INTEROP_DEBUG"):
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    else:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    say(f"nbxmpp {nbxmpp.__version__}")
    timeout = float(os.environ.get("INTEROP_TIMEOUT", "30"))
    code, text = RosterInterop(host, port, mode, jid, password, contact, name, group, bye,
                               versioning, os.environ.get("JASEUR_CA"), timeout).run()
    if code == 0:
        say("SUCCESS")
        sys.exit(0)
    print(f"nbxmpp_roster: FAIL: {text}", file=sys.stderr, flush=True)
    sys.exit(code)


if __name__ == "__main__":
    main()

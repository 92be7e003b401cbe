#!/usr/bin/python3
"""Room browsing with python3-nbxmpp (Gajim's library), as Gajim's room
browser ("Discover services") does it: disco#items on the MUC service, then
disco#info on each room listed.

Usage:
    nbxmpp_muc_rooms.py HOST PORT MODE JID PASSWORD SERVICE PUBLIC NAME HIDDEN

MODE is "starttls" or "direct". Log in, then:
  * disco#items on SERVICE: prints "ITEM jid=<jid> name=<name>" per room;
    PUBLIC must be listed with the name NAME, HIDDEN must not be;
  * disco#info on PUBLIC: a conference identity, the MUC feature,
    muc_public and muc_persistent, and NAME as its name;
  * disco#info on HIDDEN (it exists, it is only not listed): muc_hidden.
Prints "INFO <room> name=... features=..." for both; exits 0 with
"SUCCESS", or non-zero with the reason on stderr ("nbxmpp_muc_rooms: FAIL").

Environment: JASEUR_CA (certificate to pin), INTEROP_TIMEOUT (default 30),
INTEROP_DEBUG (log the XML to stderr).
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
from nbxmpp.const import ConnectionProtocol, ConnectionType  # noqa: E402
from nbxmpp.protocol import JID, Presence  # noqa: E402


def fail(text):
    print(f"nbxmpp_muc_rooms: FAIL: {text}", file=sys.stderr, flush=True)


class Browser:
    def __init__(self, host, port, mode, jid, password, service, public, name, hidden,
                 ca, timeout):
        self.jid = JID.from_string(jid)
        self.service = service
        self.public = public
        self.name = name
        self.hidden = hidden
        self.timeout = timeout
        self.loop = GLib.MainLoop()
        self.code = None
        self.text = ""
        self.infos = {}

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
            client.subscribe("stanza-sent",
                             lambda _c, _s, d: print(f"SEND: {d}", file=sys.stderr, flush=True))
            client.subscribe("stanza-received",
                             lambda _c, _s, d: print(f"RECV: {d}", file=sys.stderr, flush=True))
        self.client = client

    def finish(self, code, text):
        if self.code is not None:
            return
        self.code, self.text = code, text
        if code == 0 and self.client.state.name == "ACTIVE":
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
        client.get_module("Discovery").disco_items(self.service, callback=self.on_items)

    def on_items(self, task):
        try:
            result = task.finish()
        except Exception as e:  # noqa: BLE001 - a stanza error or a timeout
            self.finish(9, f"disco#items on {self.service} failed: {e!r}")
            return
        listed = {}
        for item in result.items:
            print(f"ITEM jid={item.jid} name={item.name!r}", flush=True)
            listed[str(item.jid)] = item.name
        if self.public not in listed:
            self.finish(12, f"the public room {self.public} is not listed: {listed}")
            return
        if listed[self.public] != self.name:
            self.finish(13, f"the public room is listed as {listed[self.public]!r}, "
                            f"not {self.name!r}")
            return
        if self.hidden in listed:
            self.finish(14, f"the hidden room {self.hidden} is listed")
            return
        discovery = self.client.get_module("Discovery")
        discovery.disco_info(self.public, callback=self.on_info)
        discovery.disco_info(self.hidden, callback=self.on_info)

    def on_info(self, task):
        try:
            info = task.finish()
        except Exception as e:  # noqa: BLE001
            self.finish(15, f"disco#info on a room failed: {e!r}")
            return
        room = str(info.jid)
        print(f"INFO {room} name={info.muc_name!r} muc={info.is_muc} "
              f"features={','.join(sorted(info.features))}", flush=True)
        self.infos[room] = info
        if len(self.infos) < 2:
            return
        public = self.infos.get(self.public)
        hidden = self.infos.get(self.hidden)
        if public is None or hidden is None:
            self.finish(16, f"disco#info answers came from {sorted(self.infos)}")
        elif not public.is_muc:
            self.finish(17, "the public room has no conference identity and MUC feature")
        elif not (public.muc_is_public and public.muc_is_persistent):
            self.finish(18, f"the public room lacks muc_public or muc_persistent: "
                            f"{public.features}")
        elif public.muc_name != self.name:
            self.finish(19, f"the public room is named {public.muc_name!r}, not {self.name!r}")
        elif not hidden.muc_is_hidden or hidden.muc_is_public:
            self.finish(20, f"the hidden room does not say muc_hidden: {hidden.features}")
        else:
            self.finish(0, "ok")

    def on_disconnected(self, client, _signal):
        if self.code == 0:
            self._quit()
            return
        domain, error, text = client.get_error()
        self.finish(4, f"disconnected before success: {domain} {error} {text or ''}")

    def on_connection_failed(self, client, _signal):
        domain, error, text = client.get_error()
        self.finish(5, f"connection failed: {domain} {error} {text or ''}")

    def on_timeout(self):
        self.finish(10, f"timed out after {self.timeout:g}s (stream state: "
                        f"{self.client.state}, rooms seen: {sorted(self.infos)})")
        return False

    def run(self):
        GLib.timeout_add(int(self.timeout * 1000), self.on_timeout)
        self.client.connect()
        self.loop.run()
        return self.code if self.code is not None else 11, self.text


def main():
    if len(sys.argv) != 10:
        fail(__doc__)
        sys.exit(2)
    host, port, mode, jid, password, service, public, name, hidden = sys.argv[1:10]
    if mode not in ("starttls", "direct"):
        fail(f"mode must be starttls or direct, not {mode!r}")
        sys.exit(2)
    if os.environ.get("INTEROP_DEBUG"):
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    else:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    print(f"nbxmpp {nbxmpp.__version__}", flush=True)
    timeout = float(os.environ.get("INTEROP_TIMEOUT", "30"))
    code, text = Browser(host, port, mode, jid, password, service, public, name, hidden,
                         os.environ.get("JASEUR_CA"), timeout).run()
    if code == 0:
        print("SUCCESS", flush=True)
        sys.exit(0)
    fail(text)
    sys.exit(code)


if __name__ == "__main__":
    main()

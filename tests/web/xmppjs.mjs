#!/usr/bin/env node
// xmpp.js (@xmpp/client) over XMPP-over-WebSocket (RFC 7395), driven by a
// script of steps given as arguments, for tests/websocket_clients.rs.
//
// Usage: node xmppjs.mjs [OPTIONS] STEP...
//   --service URL    ws://HOST:PORT/xmpp-websocket           (env XMPP_SERVICE)
//   --domain D       the XMPP domain, default localhost       (env XMPP_DOMAIN)
//   --username U     the account's local part                 (env XMPP_USERNAME)
//   --password P                                              (env XMPP_PASSWORD)
//   --resource R     default xmppjs                           (env XMPP_RESOURCE)
//   --mechanism M    force a SASL mechanism (PLAIN, SCRAM-SHA-1); default: xmpp.js's choice
//                                                             (env XMPP_MECHANISM)
//   --timeout S      bound of each wait, in seconds, default 15 (env XMPP_TIMEOUT)
// Steps, run in order after logging in and sending initial presence:
//   send JID TEXT                  send a chat message
//   expect JID TEXT                wait for a chat message from JID (bare or full)
//                                  whose body contains TEXT
//   join ROOM NICK                 join a MUC room (instant-configuring it if the
//                                  service created it locked) and wait for our own
//                                  presence in it
//   say ROOM TEXT                  send a groupchat message and wait for the room
//                                  to reflect it back to us
//   expect-groupchat ROOM NICK TEXT  wait for a groupchat message from ROOM/NICK
//                                  whose body contains TEXT
//   sleep MS                       pause
//
// Output: one JSON object per line on stdout, "event" first: connecting,
// status, mechanisms, online, step, sent, received (chat), groupchat,
// expected, joined, reflected, done; error (then exit 1; exit 2 on bad
// usage). Every wait is bounded, and so is the whole run.
// Messages that arrive before a step looks for them are kept, so an answer
// that comes early is not missed.

import { parseArgs } from "node:util";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

// Node 20 has a global WebSocket (which xmpp.js uses) only behind
// --experimental-websocket; Node 22 and later have it by default. Run
// again with the flag rather than ask every caller to know it: signals are
// passed on, and the child leaves if this process is killed outright.
if (typeof globalThis.WebSocket === "undefined") {
  if (process.env.XMPPJS_REEXEC) {
    fail("this Node.js has no WebSocket global, even with --experimental-websocket (Node.js >= 20.10 needed)", 2);
  }
  const child = spawn(
    process.execPath,
    ["--experimental-websocket", "--no-warnings", ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    { stdio: "inherit", env: { ...process.env, XMPPJS_REEXEC: String(process.pid) } },
  );
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"]) process.on(sig, () => child.kill(sig));
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
  await new Promise(() => {}); // until the child exits
}
if (process.env.XMPPJS_REEXEC) {
  const parent = Number(process.env.XMPPJS_REEXEC);
  setInterval(() => {
    if (process.ppid !== parent) fail("the parent process is gone");
  }, 500).unref();
}

const { client, xml, jid: parseJid } = await import("@xmpp/client");

const NS_MUC = "http://jabber.org/protocol/muc";
const NS_MUC_USER = "http://jabber.org/protocol/muc#user";
const NS_MUC_OWNER = "http://jabber.org/protocol/muc#owner";

function emit(event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + "\n");
}

function fail(message, code = 1) {
  emit("error", { message });
  process.stderr.write(`xmppjs.mjs: FAIL: ${message}\n`);
  process.exit(code);
}

let opts;
try {
  opts = parseArgs({
    allowPositionals: true,
    options: {
      service: { type: "string", default: process.env.XMPP_SERVICE },
      domain: { type: "string", default: process.env.XMPP_DOMAIN ?? "localhost" },
      username: { type: "string", default: process.env.XMPP_USERNAME },
      password: { type: "string", default: process.env.XMPP_PASSWORD },
      resource: { type: "string", default: process.env.XMPP_RESOURCE ?? "xmppjs" },
      mechanism: { type: "string", default: process.env.XMPP_MECHANISM },
      timeout: { type: "string", default: process.env.XMPP_TIMEOUT ?? "15" },
    },
  });
} catch (e) {
  fail(`bad arguments: ${e.message}`, 2);
}
const { service, domain, username, password, resource, mechanism } = opts.values;
const timeoutMs = Number(opts.values.timeout) * 1000;
if (!service || !username || !password) fail("--service, --username and --password are required", 2);
if (!/^wss?:\/\//.test(service)) fail(`--service must be a ws:// or wss:// URL, not ${service}`, 2);
if (!(timeoutMs > 0)) fail(`--timeout must be a positive number of seconds, not ${opts.values.timeout}`, 2);

// Parse the steps up front, so a typo fails before connecting.
const ARITY = { send: 2, expect: 2, join: 2, say: 2, "expect-groupchat": 3, sleep: 1 };
const steps = [];
for (let i = 0, args = opts.positionals; i < args.length; ) {
  const name = args[i];
  const n = ARITY[name];
  if (n === undefined) fail(`unknown step ${JSON.stringify(name)} (known: ${Object.keys(ARITY).join(", ")})`, 2);
  if (args.length - i - 1 < n) fail(`step ${name} needs ${n} arguments`, 2);
  steps.push([name, ...args.slice(i + 1, i + 1 + n)]);
  i += 1 + n;
}

const bare = (j) => parseJid(j).bare().toString();

// Every message received, in order; `waiters` are looked at on each arrival.
const inbox = [];
const waiters = new Set();

// Wait (bounded) for the first unconsumed message satisfying `pred`.
function waitMessage(what, pred) {
  return new Promise((resolve, reject) => {
    const found = inbox.find((m) => !m.used && pred(m));
    if (found) {
      found.used = true;
      return resolve(found);
    }
    const waiter = {
      check(m) {
        if (!m.used && pred(m)) {
          m.used = true;
          clearTimeout(timer);
          waiters.delete(waiter);
          resolve(m);
        }
      },
    };
    const timer = setTimeout(() => {
      waiters.delete(waiter);
      const seen = inbox.map((m) => `${m.type} from ${m.from}: ${JSON.stringify(m.body)}`);
      reject(new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}; messages seen: [${seen.join("; ")}]`));
    }, timeoutMs);
    waiters.add(waiter);
  });
}

// Presences from rooms, for `join`.
const presences = [];
const presenceWaiters = new Set();
function waitPresence(what, pred) {
  return new Promise((resolve, reject) => {
    const found = presences.find(pred);
    if (found) return resolve(found);
    const waiter = (p) => {
      if (pred(p)) {
        clearTimeout(timer);
        presenceWaiters.delete(waiter);
        resolve(p);
      }
    };
    const timer = setTimeout(() => {
      presenceWaiters.delete(waiter);
      reject(new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}; presences seen: [${presences.map((p) => p.toString()).join(" ")}]`));
    }, timeoutMs);
    presenceWaiters.add(waiter);
  });
}

function bounded(what, promise) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs / 1000} s: ${what}`)), timeoutMs);
    }),
  ]).finally(() => clearTimeout(timer));
}

const credentials = mechanism
  ? async (authenticate, mechanisms) => {
      emit("mechanisms", { offered: mechanisms, chosen: mechanism });
      if (!mechanisms.includes(mechanism)) throw new Error(`SASL mechanism ${mechanism} not offered (offered: ${mechanisms.join(", ")})`);
      await authenticate({ username, password }, mechanism);
    }
  : async (authenticate, mechanisms, fast, entity) => {
      // xmpp.js's own choice (createOnAuthenticate.getMechanism): the
      // first it supports, PLAIN only on a connection it deems secure.
      const chosen = entity.isSecure() ? mechanisms[0] : mechanisms.find((m) => m !== "PLAIN");
      emit("mechanisms", { offered: mechanisms, chosen });
      await authenticate({ username, password }, chosen);
    };

const xmpp = client({ service, domain, resource, credentials });
// A test client must fail, not reconnect for ever.
xmpp.reconnect.stop();

let finished = false;
xmpp.on("status", (status) => {
  if (!finished) emit("status", { status });
});
xmpp.on("error", (err) => {
  if (!finished) fail(`xmpp.js error on ${service}: ${[err.condition, err.message ?? String(err)].filter(Boolean).join(": ")}`);
});
xmpp.on("disconnect", () => {
  if (!finished) fail("disconnected by the server before the script was done");
});

xmpp.on("stanza", (stanza) => {
  if (stanza.is("message")) {
    const m = {
      type: stanza.attrs.type ?? "normal",
      from: stanza.attrs.from ?? "",
      body: stanza.getChildText("body"),
      stanza,
    };
    if (m.body === null || m.body === undefined) return; // chat states, subjects...
    const delayed = stanza.getChild("delay", "urn:xmpp:delay") !== undefined;
    emit(m.type === "groupchat" ? "groupchat" : "received", { from: m.from, type: m.type, body: m.body, delayed });
    inbox.push(m);
    for (const w of [...waiters]) w.check(m);
  } else if (stanza.is("presence") && stanza.getChild("x", NS_MUC_USER)) {
    presences.push(stanza);
    for (const w of [...presenceWaiters]) w(stanza);
  }
});

const overall = setTimeout(() => fail(`the whole script took longer than ${(timeoutMs * (steps.length + 2)) / 1000} s`), timeoutMs * (steps.length + 2));

async function run() {
  emit("connecting", { service, domain, username });
  const address = await bounded(`logging in to ${service}`, xmpp.start());
  emit("online", { jid: address.toString(), secure: xmpp.isSecure() });
  await xmpp.send(xml("presence"));

  for (const step of steps) {
    const [name, ...a] = step;
    emit("step", { step: name, args: a });
    switch (name) {
      case "send": {
        const [to, text] = a;
        await xmpp.send(xml("message", { to, type: "chat", id: `m${Date.now()}` }, xml("body", {}, text)));
        emit("sent", { to, type: "chat", body: text });
        break;
      }
      case "expect": {
        const [from, text] = a;
        const m = await waitMessage(`a chat message from ${from} containing ${JSON.stringify(text)}`, (m) =>
          m.type !== "groupchat" && m.type !== "error" && (m.from === from || bare(m.from) === from) && m.body.includes(text));
        emit("expected", { from: m.from, body: m.body });
        break;
      }
      case "join": {
        const [room, nick] = a;
        const occupant = `${room}/${nick}`;
        await xmpp.send(xml("presence", { to: occupant }, xml("x", { xmlns: NS_MUC }, xml("history", { maxstanzas: "0" }))));
        const self = await waitPresence(`our own presence in ${room}`, (p) =>
          p.attrs.from === occupant &&
          (p.attrs.type === "error" ||
            p.getChild("x", NS_MUC_USER).getChildren("status").some((s) => s.attrs.code === "110")));
        if (self.attrs.type === "error") throw new Error(`cannot join ${room}: ${self.toString()}`);
        const codes = self.getChild("x", NS_MUC_USER).getChildren("status").map((s) => s.attrs.code);
        if (codes.includes("201")) {
          // A new room, locked until configured: accept the default
          // configuration (XEP-0045 §10.1.2, instant room).
          await bounded(`configuring ${room} as an instant room`, xmpp.iqCaller.set(
            xml("query", { xmlns: NS_MUC_OWNER }, xml("x", { xmlns: "jabber:x:data", type: "submit" })),
            room,
          ));
        }
        emit("joined", { room, nick, created: codes.includes("201"), codes });
        break;
      }
      case "say": {
        const [room, text] = a;
        const id = `g${Date.now()}`;
        await xmpp.send(xml("message", { to: room, type: "groupchat", id }, xml("body", {}, text)));
        emit("sent", { to: room, type: "groupchat", body: text });
        const m = await waitMessage(`the reflection of our groupchat message in ${room}`, (m) =>
          m.type === "groupchat" && bare(m.from) === room && m.body === text);
        emit("reflected", { from: m.from, body: m.body });
        break;
      }
      case "expect-groupchat": {
        const [room, nick, text] = a;
        const m = await waitMessage(`a groupchat message from ${room}/${nick} containing ${JSON.stringify(text)}`, (m) =>
          m.type === "groupchat" && m.from === `${room}/${nick}` && m.body.includes(text));
        emit("expected", { from: m.from, body: m.body });
        break;
      }
      case "sleep":
        await new Promise((r) => setTimeout(r, Number(a[0])));
        break;
    }
  }

  finished = true;
  emit("done", { steps: steps.length });
  try {
    await bounded("closing the stream", xmpp.stop());
  } catch {
    // The script succeeded; a slow close is not its failure.
  }
  clearTimeout(overall);
  process.exit(0);
}

run().catch((e) => fail(e.message ?? String(e)));

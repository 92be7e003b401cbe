#!/usr/bin/env node
// Converse.js in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core) over XMPP-over-WebSocket (RFC 7395), for
// tests/websocket_clients.rs. The page and Converse's dist files are served
// by a small HTTP server inside this script on a free loopback port; any
// request for another host is refused and reported.
//
// Usage: node converse.mjs [OPTIONS]
//   --service URL     ws://HOST:PORT/xmpp-websocket                  (env XMPP_SERVICE)
//   --jid JID         who logs in through Converse's login form      (env XMPP_JID)
//   --password P                                                     (env XMPP_PASSWORD)
//   --peer JID        opens a chat with this JID and sends --text    (env XMPP_PEER)
//   --text T          default "Hello from Converse.js"
//   --expect T        then waits for a message from --peer containing T
//                     (default: any message from --peer)
//   --room JID        then joins this room (optional)                (env XMPP_ROOM)
//   --nick N          nickname in the room, default converse
//   --room-text T     sent to the room; it must come back from the room
//   --screenshot PNG  where to save the screenshot of the conversation with
//                     --peer (required); the room is saved beside it as
//                     NAME-room.png, and on failure the page as NAME-failure.png
//   --timeout S       bound of the whole run, in seconds, default 60
//   --chromium PATH   default /usr/bin/chromium                      (env CHROMIUM)
//
// Output: one JSON object per line on stdout, "event" first: serving,
// browser, login, websocket, online, chat-sent, received, room-joined,
// room-sent, room-reflected, screenshot, logout, done; along the way
// console (the page's errors and warnings), blocked (a request for another
// host), http-404; on failure error, pending (Converse's unresolved
// promises), hint, then exit 1 (exit 2 on bad usage). Every wait is
// bounded, and so is the whole run.

import http from "node:http";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

function emit(event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + "\n");
}

let cleanup = async () => {};
// Where the run is: "login", "chat", "room" (for failure reports).
let phase = "login";
// Set once the test is done and logs out: what the page does then is
// not reported.
let loggingOut = false;
let failing = false;
async function fail(message, code = 1) {
  if (failing) return;
  failing = true;
  emit("error", { message });
  process.stderr.write(`converse.mjs: FAIL: ${message}\n`);
  try {
    await Promise.race([cleanup(true), new Promise((r) => setTimeout(r, 5000))]);
  } finally {
    process.exit(code);
  }
}

let opts;
try {
  opts = parseArgs({
    options: {
      service: { type: "string", default: process.env.XMPP_SERVICE },
      jid: { type: "string", default: process.env.XMPP_JID },
      password: { type: "string", default: process.env.XMPP_PASSWORD },
      peer: { type: "string", default: process.env.XMPP_PEER },
      text: { type: "string", default: "Hello from Converse.js" },
      expect: { type: "string", default: "" },
      room: { type: "string", default: process.env.XMPP_ROOM },
      nick: { type: "string", default: "converse" },
      "room-text": { type: "string", default: "Hello room, from Converse.js" },
      screenshot: { type: "string" },
      timeout: { type: "string", default: "60" },
      chromium: { type: "string", default: process.env.CHROMIUM ?? "/usr/bin/chromium" },
    },
  });
} catch (e) {
  await fail(`bad arguments: ${e.message}`, 2);
}
const o = opts.values;
for (const k of ["service", "jid", "password", "peer", "screenshot"]) {
  if (!o[k]) await fail(`--${k} is required`, 2);
}
if (!/^wss?:\/\//.test(o.service)) await fail(`--service must be a ws:// or wss:// URL, not ${o.service}`, 2);
const totalMs = Number(o.timeout) * 1000;
if (!(totalMs > 0)) await fail(`--timeout must be a positive number of seconds, not ${o.timeout}`, 2);
if (!fs.existsSync(o.chromium)) await fail(`no Chromium at ${o.chromium} (apt-get install chromium)`, 2);

const deadline = Date.now() + totalMs;
const left = () => Math.max(1, deadline - Date.now());
const overall = setTimeout(() => fail(`the whole run took longer than ${totalMs / 1000} s`), totalMs);

const shot = path.resolve(o.screenshot);
const shotBeside = (suffix) => shot.replace(/(\.png)?$/i, `-${suffix}.png`);

// ---- the page and Converse's files, from loopback ---------------------------------
const dist = path.join(here, "node_modules", "converse.js", "dist");
if (!fs.existsSync(path.join(dist, "converse.min.js"))) {
  await fail(`Converse.js is not installed in ${dist} (run: npm ci --prefix tests/web)`, 2);
}
const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
  ".wasm": "application/wasm",
  ".png": "image/png",
  ".svg": "image/svg+xml",
  ".ico": "image/x-icon",
  ".woff": "font/woff",
  ".woff2": "font/woff2",
  ".ttf": "font/ttf",
  ".eot": "application/vnd.ms-fontobject",
  ".mp3": "audio/mpeg",
  ".ogg": "audio/ogg",
};

// Converse's settings: everything from here, nothing discovered or
// fetched elsewhere, a clean state, login through the form.
const settings = {
  assets_path: "/dist/",
  websocket_url: o.service,
  discover_connection_methods: false,
  authentication: "login",
  auto_login: false,
  keepalive: false,
  auto_reconnect: false,
  view_mode: "fullscreen",
  i18n: "en",
  loglevel: process.env.CONVERSE_LOGLEVEL ?? "warn",
  allow_non_roster_messaging: true,
  persistent_store: process.env.CONVERSE_STORE ?? "sessionStorage",
  clear_cache_on_logout: true,
  use_system_emojis: true,
  show_client_info: false,
  show_connection_url_input: false,
  allow_user_trust_override: false,
  muc_instant_rooms: true,
  play_sounds: false,
  show_desktop_notifications: false,
  disable_effects: true,
  whitelisted_plugins: ["jaseur-test"],
};

const indexHtml = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Jaseur - Converse.js over WebSocket</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" type="text/css" href="/dist/converse.min.css">
</head>
<body class="converse-fullscreen">
<script>
// Converse's fullscreen login page has a footer with its sponsors' logos,
// fetched from conversejs.org; an empty element of that name, defined
// first, takes its place (Converse does not redefine an element).
customElements.define("converse-footer", class extends HTMLElement {});
</script>
<script type="module">
// Converse 14's build is an ES module (it also sets window.converse).
import converse from "/dist/converse.min.js";
// A tiny plugin that hands the test Converse's API and its events.
window.jaseurTest = { connected: false, disconnected: false, failed: false };
converse.plugins.add("jaseur-test", {
  initialize() {
    const { api } = this._converse;
    window.jaseurTest.api = api;
    // A chat or room model by JID, synchronously (api.chats.get and
    // api.rooms.get return promises, useless in waitForFunction).
    window.jaseurTest.box = (jid) => this._converse.state.chatboxes?.get(jid.toLowerCase());
    // Converse's named promises still pending (for failure reports).
    const promises = this._converse.promises;
    window.jaseurTest.pending = () =>
      Object.entries(promises).filter(([, p]) => p.isPending).map(([name]) => name);
    api.listen.on("connected", () => { window.jaseurTest.connected = true; });
    api.listen.on("disconnected", () => { window.jaseurTest.disconnected = true; });
    // What the login form would tell the user (Strophe's status numbers:
    // 0 error, 2 connection failed, 4 authentication failed, 6
    // disconnected, 10 connection timeout end a login attempt).
    window.jaseurTest.feedback = [];
    api.listen.on("connfeedback", (fb) => {
      const status = fb.get("connection_status");
      window.jaseurTest.feedback.push({ status, message: fb.get("message") ?? "" });
      if ([0, 2, 4, 6, 10].includes(status)) window.jaseurTest.failed = true;
    });
  },
});
converse.initialize(${JSON.stringify(settings)});
</script>
</body>
</html>
`;

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://127.0.0.1");
  if (url.pathname === "/" || url.pathname === "/index.html") {
    res.writeHead(200, { "content-type": TYPES[".html"], "cache-control": "no-store" });
    return res.end(indexHtml);
  }
  if (url.pathname.startsWith("/dist/")) {
    const file = path.normalize(path.join(dist, decodeURIComponent(url.pathname.slice("/dist/".length))));
    if (file.startsWith(dist + path.sep) && fs.existsSync(file) && fs.statSync(file).isFile()) {
      res.writeHead(200, { "content-type": TYPES[path.extname(file)] ?? "application/octet-stream" });
      return fs.createReadStream(file).pipe(res);
    }
  }
  emit("http-404", { path: url.pathname });
  res.writeHead(404, { "content-type": "text/plain" });
  res.end("not found\n");
});
await new Promise((resolve, reject) => {
  server.once("error", reject);
  server.listen(0, "127.0.0.1", resolve);
});
const pageUrl = `http://127.0.0.1:${server.address().port}/`;
emit("serving", { url: pageUrl, dist });

// ---- the browser -------------------------------------------------------------------
const { chromium } = await import("playwright-core");
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "jaseur-converse-"));
let context;
let page;
cleanup = async (failed) => {
  clearTimeout(overall);
  if (failed && page) {
    if (phase !== "login") {
      try {
        const pending = await Promise.race([
          page.evaluate(() => window.jaseurTest?.pending?.()),
          new Promise((r) => setTimeout(r, 2000)),
        ]);
        if (pending) emit("pending", { promises: pending });
        if (phase === "chat" && pending?.includes("blocklistInitialized")) {
          // Seen with Converse 14.0.0: opening a chat with someone not in the
          // roster waits for the XEP-0191 blocklist, for ever when the server
          // does not announce urn:xmpp:blocking.
          emit("hint", { text: "Converse waits for the XEP-0191 blocklist before it opens a chat with a non-contact: does the server announce urn:xmpp:blocking in its disco#info?" });
        }
      } catch {
        // No page to ask.
      }
    }
    try {
      await page.screenshot({ path: shotBeside("failure"), timeout: 3000 });
      emit("screenshot", { path: shotBeside("failure"), what: "the page when it failed" });
    } catch {
      // No page to show.
    }
  }
  try {
    await context?.close();
  } catch {
    // Already gone.
  }
  server.close();
  server.closeAllConnections?.();
  fs.rmSync(userDataDir, { recursive: true, force: true });
};

try {
  const launched = Date.now();
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: o.chromium,
    headless: true,
    timeout: left(),
    viewport: { width: 1280, height: 800 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  emit("browser", { version: context.browser()?.version() ?? null, ms: Date.now() - launched });
} catch (e) {
  await fail(`cannot start Chromium at ${o.chromium}: ${e.message}`);
}

// Only this machine's loopback: anything else is refused and reported.
const blocked = [];
await context.route("**/*", (route) => {
  const u = new URL(route.request().url());
  if (["http:", "https:", "ws:", "wss:"].includes(u.protocol) && !["127.0.0.1", "localhost", "[::1]"].includes(u.hostname)) {
    if (!loggingOut) {
      blocked.push(u.href);
      emit("blocked", { url: u.href });
    }
    return route.abort("blockedbyclient");
  }
  return route.continue();
});

page = context.pages()[0] ?? (await context.newPage());
page.setDefaultTimeout(15000);
let consoleLines = 0;
// CONVERSE_LOGLEVEL=debug: Converse logs everything, and all of it is shown.
const verbose = process.env.CONVERSE_LOGLEVEL === "debug";
page.on("console", (m) => {
  if (loggingOut) return;
  if ((verbose || m.type() === "error" || m.type() === "warning") && consoleLines++ < (verbose ? 5000 : 50)) {
    emit("console", { level: m.type(), text: m.text().slice(0, 500) });
  }
});
page.on("pageerror", (e) => loggingOut || emit("console", { level: "pageerror", text: String(e.message).slice(0, 500) }));
page.on("websocket", (ws) => {
  emit("websocket", { url: ws.url() });
  ws.on("close", () => emit("websocket-closed", { url: ws.url() }));
});

const step = (ms) => Math.min(ms, left());

// Open (or bring back) the chat with the peer. Returns nothing: a model
// would be serialised, with all of Converse behind it.
async function openChat() {
  await evaluate(`opening the chat with ${o.peer}`, 15000, async (peer) => {
    await window.jaseurTest.api.chats.open(peer, {}, true);
  }, o.peer);
}

// page.evaluate, bounded (it has no timeout of its own).
async function evaluate(what, ms, fn, arg) {
  let timer;
  try {
    return await Promise.race([
      page.evaluate(fn, arg),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${step(ms) / 1000} s: ${what}`)), step(ms));
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function run() {
  // Log in as a person does: the login form.
  await page.goto(pageUrl, { timeout: step(20000) });
  const jidInput = page.locator("#converse-login-jid");
  await jidInput.waitFor({ state: "visible", timeout: step(20000) });
  emit("login", { jid: o.jid, form: true });
  await jidInput.fill(o.jid);
  await page.locator("#converse-login-password").fill(o.password);
  await page.locator("converse-login-form button[type=submit], form.converse-form button[type=submit]").first().click();
  await page.waitForFunction(
    () => window.jaseurTest.connected || window.jaseurTest.disconnected || window.jaseurTest.failed,
    null,
    { timeout: step(20000) },
  ).catch(() => {
    throw new Error(`no answer to the login over ${o.service} within 20 s`);
  });
  const me = await evaluate("reading our JID", 5000, () => window.jaseurTest.connected && window.jaseurTest.api.connection.get()?.jid);
  if (!me) {
    const feedback = await evaluate("reading the login feedback", 5000, () => window.jaseurTest.feedback);
    const said = [...new Set(feedback.map((f) => `status ${f.status}${f.message ? ` "${f.message}"` : ""}`))].join(", ");
    throw new Error(`login over ${o.service} failed (Converse's connection feedback: ${said || "none"})`);
  }
  phase = "chat";
  emit("online", { jid: me });

  // A one-to-one chat: open it, type the message and press Enter.
  await openChat();
  const chat = page.locator(`converse-chat[jid="${o.peer}"]`);
  const chatInput = chat.locator("textarea.chat-textarea");
  await chatInput.waitFor({ state: "visible", timeout: step(15000) });
  await chatInput.fill(o.text);
  await chatInput.press("Enter");
  await chat.locator(".chat-msg__text", { hasText: o.text }).first().waitFor({ timeout: step(15000) });
  emit("chat-sent", { to: o.peer, body: o.text });

  // The peer's answer, in Converse's model and then on screen.
  const answer = await page.waitForFunction(
    ({ peer, expect }) => {
      const box = window.jaseurTest.box(peer);
      const m = box?.messages?.find((m) => m.get("sender") === "them" && (m.get("body") ?? "").includes(expect));
      return m ? { from: m.get("from"), body: m.get("body") } : null;
    },
    { peer: o.peer, expect: o.expect },
    { timeout: step(20000) },
  ).then((h) => h.jsonValue()).catch(() => {
    throw new Error(`no message from ${o.peer}${o.expect ? ` containing ${JSON.stringify(o.expect)}` : ""} reached Converse`);
  });
  await chat.locator(".chat-msg__text", { hasText: answer.body }).first().waitFor({ timeout: step(10000) });
  emit("received", { from: answer.from, body: answer.body, shown: true });

  if (o.room) {
    phase = "room";
    // Join the room (Converse creates it as an instant room if needed),
    // say something, and wait for the room's reflection (it marks the
    // message received). The evaluation returns nothing: a model would be
    // serialised, with all of Converse behind it.
    await evaluate(`opening the room ${o.room}`, 15000, async ({ room, nick }) => {
      await window.jaseurTest.api.rooms.open(room, { nick }, true);
    }, { room: o.room, nick: o.nick });
    await page.waitForFunction(
      (room) => window.jaseurTest.box(room)?.isEntered?.(),
      o.room,
      { timeout: step(20000) },
    ).catch(() => {
      throw new Error(`Converse did not enter the room ${o.room}`);
    });
    emit("room-joined", { room: o.room, nick: o.nick });
    const muc = page.locator(`converse-muc[jid="${o.room}"]`);
    const mucInput = muc.locator("textarea.chat-textarea");
    await mucInput.waitFor({ state: "visible", timeout: step(15000) });
    await mucInput.fill(o["room-text"]);
    await mucInput.press("Enter");
    emit("room-sent", { room: o.room, body: o["room-text"] });
    const reflected = await page.waitForFunction(
      ({ room, text }) => {
        const m = window.jaseurTest.box(room)?.messages?.find((m) => m.get("body") === text && m.get("sender") === "me");
        return m?.get("received") ? { from: m.get("from"), received: m.get("received") } : null;
      },
      { room: o.room, text: o["room-text"] },
      { timeout: step(20000) },
    ).then((h) => h.jsonValue()).catch(() => {
      throw new Error(`the room ${o.room} never reflected our message back`);
    });
    await muc.locator(".chat-msg__text", { hasText: o["room-text"] }).first().waitFor({ timeout: step(10000) });
    emit("room-reflected", { from: reflected.from, body: o["room-text"], shown: true });
    await page.screenshot({ path: shotBeside("room"), timeout: step(10000) });
    emit("screenshot", { path: shotBeside("room"), what: `the room ${o.room}` });

    // Back to the one-to-one chat for the main screenshot.
    await openChat();
    await chat.locator(".chat-msg__text", { hasText: answer.body }).first().waitFor({ state: "visible", timeout: step(10000) });
  }

  await page.screenshot({ path: shot, timeout: step(10000) });
  emit("screenshot", { path: shot, what: `the chat with ${o.peer}` });

  if (blocked.length) {
    throw new Error(`the page asked for resources outside this machine: ${blocked.join(", ")}`);
  }

  // Log out: Converse closes the stream.
  emit("logout", {});
  loggingOut = true;
  await evaluate("logging out", 5000, () => window.jaseurTest.api.user.logout()).catch(() => {});
  await cleanup(false);
  emit("done", { ms: totalMs - left() });
  process.exit(0);
}

run().catch((e) => fail(e.message ?? String(e)));

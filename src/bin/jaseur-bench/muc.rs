//! The `muc` scenario: groupchat fan-out.
use super::proc::{CpuMark, kib};
use super::scan::{Flow, Splitter, find, has_attr, has_status, snippet, start_tag};
use super::session::TlsSession;
use super::stats::Histogram;
use super::*;
use std::io::Write as _;
use std::sync::atomic::AtomicU64;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_util::sync::CancellationToken;

/// What starts a message body: `jb SENDER SEQ NANOS`, where SENDER is the
/// sender's place in its room, SEQ counts its messages from 0 and NANOS is
/// the (planned) send time in nanoseconds since the generator started.
const MARKER: &[u8] = b"<body>jb ";
/// The id of the room configuration request.
const CONFIG_ID: &str = "jb-config";
/// Problems printed in full; later ones are only counted.
const SHOWN: u64 = 5;

/// Sender, sequence number and send time of a benchmark message.
pub fn parse_body(stanza: &[u8]) -> Option<(usize, u64, u64)> {
    let mut fields = body_fields(stanza)?;
    let sender = usize::try_from(number(fields.next()?)?).ok()?;
    let seq = number(fields.next()?)?;
    let nanos = number(fields.next()?)?;
    Some((sender, seq, nanos))
}

/// The optional fifth field of a body (`jb SENDER SEQ PLANNED SENT`):
/// when the message actually left the generator, in ns.
pub fn parse_sent(stanza: &[u8]) -> Option<u64> {
    number(body_fields(stanza)?.nth(3)?)
}

/// The space-separated fields after the benchmark marker.
fn body_fields(stanza: &[u8]) -> Option<impl Iterator<Item = &[u8]>> {
    let at = find(stanza, MARKER)? + MARKER.len();
    let rest = &stanza[at..];
    let end = rest.iter().position(|&b| b == b'<')?;
    Some(rest[..end].split(|&b| b == b' '))
}

/// A decimal u64 field (no sign, no overflow).
fn number(f: &[u8]) -> Option<u64> {
    if f.is_empty() || f.len() > 20 {
        return None;
    }
    f.iter().try_fold(0u64, |n, &d| {
        d.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))?
    })
}

/// When sending starts and stops.
#[derive(Clone, Copy)]
struct Go {
    start: Instant,
    send_end: Instant,
}

/// State shared by every occupant task.
struct Shared {
    /// The clock of the message timestamps.
    base: Instant,
    /// Messages sent, per room.
    sent: Vec<AtomicU64>,
    delivered: AtomicU64,
    /// Error stanzas received (bounced messages, refused joins...).
    errors: AtomicU64,
    /// Latest delivery, in ns since `base`.
    last_delivery: AtomicU64,
    latency: Histogram,
    /// Sent messages in open loop planned but sent late (generator behind).
    late: AtomicU64,
    joins: Semaphore,
    go: watch::Receiver<Option<Go>>,
    cancel: CancellationToken,
    args: MucArgs,
    service: String,
    /// Closed loop: None. Open loop: the interval between two messages of one sender.
    interval: Option<Duration>,
    senders_total: usize,
}

impl Shared {
    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    fn error(&self, what: &str, stanza: &[u8]) {
        let n = self.errors.fetch_add(1, Ordering::Relaxed);
        if n < SHOWN {
            eprintln!("{what}: {}", snippet(stanza));
        }
    }
}

/// What one occupant saw, returned when its task ends.
struct Outcome {
    room: usize,
    received: u64,
    out_of_order: u64,
    closed: bool,
}

/// One occupant: its session and just enough state to count.
struct Occupant {
    session: TlsSession,
    splitter: Splitter,
    room: usize,
    /// Place in the room (0 created it; below `senders` sends).
    place: usize,
    /// `room@service`.
    room_jid: String,
    nick: String,
    /// Messages received.
    received: u64,
    /// Next expected sequence number from each sender of the room.
    next_seq: Vec<u64>,
    out_of_order: u64,
    // Filled by `handle`, acted upon by the task:
    /// Own messages that came back (closed loop: send the next).
    own_back: usize,
    /// Joined (true: the room was created by this join).
    joined: Option<bool>,
    /// Answer to the configuration request.
    configured: Option<Result<(), String>>,
    join_error: Option<String>,
    replies: Vec<String>,
    closed: bool,
}

impl Occupant {
    /// Look at one stanza.
    fn handle(&mut self, stanza: &[u8], now: u64, shared: &Shared) {
        let tag = start_tag(stanza);
        if tag.starts_with(b"<message") {
            if has_attr(tag, "type", "error") {
                shared.error("error message", stanza);
                return;
            }
            let Some((sender, seq, sent_at)) = parse_body(stanza) else {
                return; // the subject, or something else
            };
            self.received += 1;
            shared.delivered.fetch_add(1, Ordering::Relaxed);
            shared.last_delivery.fetch_max(now, Ordering::Relaxed);
            shared.latency.record_us(now.saturating_sub(sent_at) / 1000);
            if let Some(next) = self.next_seq.get_mut(sender) {
                if seq < *next {
                    self.out_of_order += 1;
                }
                *next = (*next).max(seq + 1);
            }
            if sender == self.place && self.place < self.next_seq.len() {
                self.own_back += 1;
            }
        } else if tag.starts_with(b"<presence") {
            if self.joined.is_some() {
                return;
            }
            if has_attr(tag, "type", "error") {
                self.join_error = Some(snippet(stanza));
            } else if has_status(stanza, "110") {
                self.joined = Some(has_status(stanza, "201"));
            }
        } else if tag.starts_with(b"<iq") {
            if has_attr(tag, "id", CONFIG_ID) {
                self.configured = Some(if has_attr(tag, "type", "result") {
                    Ok(())
                } else {
                    Err(snippet(stanza))
                });
            } else if let Some(reply) = login::ping_reply(stanza, "") {
                self.replies.push(reply);
            } else if has_attr(tag, "type", "get") || has_attr(tag, "type", "set") {
                shared.error("unexpected request", stanza);
            }
        }
    }

    /// Read once (until `deadline`) and handle what came.
    async fn pump(&mut self, shared: &Shared, deadline: Instant) -> anyhow::Result<()> {
        let mut chunk = [0u8; 4096];
        let n = timeout_at(deadline, self.session.read(&mut chunk))
            .await
            .map_err(|_| anyhow!("timed out"))?
            .unwrap_or(0);
        self.feed(&chunk[..n], shared).await
    }

    /// Handle `data` just read (empty: the connection was closed).
    async fn feed(&mut self, data: &[u8], shared: &Shared) -> anyhow::Result<()> {
        if data.is_empty() {
            self.closed = true;
            bail!("connection closed by the server");
        }
        let now = shared.nanos(Instant::now());
        let mut splitter = std::mem::take(&mut self.splitter);
        let flow = splitter.feed(data, |s| self.handle(s, now, shared));
        self.splitter = splitter;
        if flow == Flow::Closed {
            self.closed = true;
            bail!("stream closed by the server");
        }
        if !self.replies.is_empty() {
            let replies = std::mem::take(&mut self.replies).concat();
            self.write(replies.as_bytes()).await?;
        }
        Ok(())
    }

    async fn write(&mut self, data: &[u8]) -> anyhow::Result<()> {
        self.session.write_all(data).await?;
        self.session.flush().await?;
        Ok(())
    }

    /// Join the room (and, for its first occupant, create and configure
    /// it). Returns whether this join created the room.
    async fn join(&mut self, shared: &Shared, deadline: Instant) -> anyhow::Result<bool> {
        let _permit = shared.joins.acquire().await?;
        let join = format!(
            "<presence to='{}/{}'><x xmlns='http://jabber.org/protocol/muc'>\
             <history maxstanzas='0'/></x></presence>",
            self.room_jid, self.nick
        );
        self.write(join.as_bytes()).await?;
        let created = loop {
            if let Some(created) = self.joined {
                break created;
            }
            if let Some(e) = self.join_error.take() {
                bail!("join refused: {e}");
            }
            self.pump(shared, deadline).await.context("join")?;
        };
        if created {
            let max_users = shared.args.max_users.unwrap_or(shared.args.room_size);
            let config = format!(
                "<iq type='set' to='{}' id='{CONFIG_ID}'>\
                 <query xmlns='http://jabber.org/protocol/muc#owner'>\
                 <x xmlns='jabber:x:data' type='submit'>\
                 <field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>\
                 <field var='muc#roomconfig_maxusers'><value>{max_users}</value></field>\
                 </x></query></iq>",
                self.room_jid
            );
            self.write(config.as_bytes()).await?;
            loop {
                match self.configured.take() {
                    Some(Ok(())) => break,
                    Some(Err(e)) => bail!("room configuration refused: {e}"),
                    None => self.pump(shared, deadline).await.context("configuration")?,
                }
            }
        }
        Ok(created)
    }

    /// Append one message to `out`.
    fn message(&self, out: &mut Vec<u8>, prefix: &[u8], seq: u64, at: u64) {
        out.extend_from_slice(prefix);
        let _ = write!(out, "{seq} {at}</body></message>");
    }

    /// Receive (and send, for a sender) until cancelled.
    async fn run(&mut self, shared: &Shared, go: Go) -> anyhow::Result<()> {
        let sender = self.place < self.next_seq.len();
        // Closed loop (no interval): a sender sends again when its own
        // message comes back. In open loop it never does, not even once
        // its schedule is over.
        let closed_loop = shared.interval.is_none();
        // Pre-serialised: all but the sequence number and the time.
        let prefix = format!(
            "<message to='{}' type='groupchat'><body>jb {} ",
            self.room_jid, self.place
        )
        .into_bytes();
        let mut out = Vec::with_capacity(256);
        let mut seq = 0u64;
        let sent = &shared.sent[self.room];
        // Open loop: when the next message is due. Senders are spread
        // evenly over one interval.
        let mut due = shared.interval.map(|interval| {
            let index = self.room * shared.args.senders + self.place;
            go.start + interval.mul_f64(index as f64 / shared.senders_total as f64)
        });
        if sender && closed_loop {
            for _ in 0..shared.args.window.max(1) {
                self.message(&mut out, &prefix, seq, shared.nanos(Instant::now()));
                seq += 1;
            }
            self.write(&out).await?;
            sent.fetch_add(seq, Ordering::Relaxed);
        }
        let mut chunk = [0u8; 4096];
        loop {
            let next = due.filter(|_| sender);
            tokio::select! {
                read = self.session.read(&mut chunk) => {
                    let n = read.unwrap_or(0);
                    self.feed(&chunk[..n], shared).await?;
                    if sender && self.own_back > 0 && closed_loop {
                        out.clear();
                        let now = Instant::now();
                        let mut count = 0;
                        if now < go.send_end {
                            for _ in 0..self.own_back {
                                self.message(&mut out, &prefix, seq, shared.nanos(now));
                                seq += 1;
                                count += 1;
                            }
                        }
                        self.own_back = 0;
                        if count > 0 {
                            self.write(&out).await?;
                            sent.fetch_add(count, Ordering::Relaxed);
                        }
                    }
                    self.own_back = 0;
                }
                _ = sleep_until(next.unwrap_or(go.send_end)), if next.is_some() => {
                    let (Some(interval), Some(mut at)) = (shared.interval, due) else {
                        continue;
                    };
                    out.clear();
                    let now = Instant::now();
                    let mut count = 0;
                    // Every message due by now, each stamped with its
                    // planned time (a late generator shows as latency).
                    while at <= now && at < go.send_end {
                        self.message(&mut out, &prefix, seq, shared.nanos(at));
                        seq += 1;
                        count += 1;
                        at += interval;
                    }
                    if count > 1 {
                        shared.late.fetch_add(count - 1, Ordering::Relaxed);
                    }
                    due = (at < go.send_end).then_some(at);
                    if count > 0 {
                        self.write(&out).await?;
                        sent.fetch_add(count, Ordering::Relaxed);
                    }
                }
                _ = shared.cancel.cancelled() => return Ok(()),
            }
        }
    }
}

/// One occupant's whole life: join, wait for the start, run.
async fn occupant(
    mut o: Occupant,
    shared: Arc<Shared>,
    ready: (watch::Sender<Option<bool>>, watch::Receiver<Option<bool>>),
    joined: mpsc::Sender<anyhow::Result<bool>>,
) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs(shared.args.join_timeout);
    let result = async {
        if o.place > 0 {
            // Wait for the room to be created and configured.
            let mut rx = ready.1.clone();
            let ok = timeout_at(deadline, async {
                rx.wait_for(Option::is_some).await.ok().and_then(|r| *r)
            })
            .await
            .map_err(|_| anyhow!("the room was never ready"))?;
            if ok != Some(true) {
                bail!("its creator could not create the room");
            }
        }
        let created = o.join(&shared, deadline).await;
        if o.place == 0 {
            let _ = ready.0.send(Some(created.is_ok()));
        }
        created
    }
    .await;
    drop(ready);
    let failed = result.is_err();
    let _ = joined
        .send(result.with_context(|| format!("{} in {}", o.nick, o.room_jid)))
        .await;
    drop(joined);
    if !failed {
        // Read (presence of later joiners) until told to start.
        let mut go_rx = shared.go.clone();
        let go = loop {
            let mut chunk = [0u8; 4096];
            tokio::select! {
                go = async { go_rx.wait_for(Option::is_some).await.ok().and_then(|g| *g) } => {
                    break go;
                }
                read = o.session.read(&mut chunk) => {
                    let n = read.unwrap_or(0);
                    if o.feed(&chunk[..n], &shared).await.is_err() {
                        break None;
                    }
                }
                _ = shared.cancel.cancelled() => break None,
            }
        };
        if let Some(go) = go
            && let Err(e) = o.run(&shared, go).await
            && shared.errors.fetch_add(1, Ordering::Relaxed) < SHOWN
        {
            eprintln!("{} in {}: {e:#}", o.nick, o.room_jid);
        }
    }
    Outcome {
        room: o.room,
        received: o.received,
        out_of_order: o.out_of_order,
        closed: o.closed,
    }
}

pub async fn run(args: MucArgs) -> anyhow::Result<()> {
    let t = args.target.clone();
    t.require_tcp("muc")?;
    if args.room_size == 0 || t.concurrency == 0 || args.join_concurrency == 0 {
        bail!("--room-size, --concurrency and --join-concurrency must be at least 1");
    }
    let rooms = t.users / args.room_size;
    if rooms == 0 {
        bail!(
            "--users ({}) is below --room-size ({})",
            t.users,
            args.room_size
        );
    }
    let users = rooms * args.room_size;
    if users < t.users {
        eprintln!(
            "warning: {} users left out ({} rooms of {})",
            t.users - users,
            rooms,
            args.room_size
        );
    }
    let senders = args.senders.min(args.room_size);
    let senders_total = rooms * senders;
    if senders_total == 0 {
        bail!("--senders must be at least 1");
    }
    let interval = match args.rate {
        None => None,
        Some(rate) if rate > 0.0 && rate.is_finite() => {
            Some(Duration::from_secs_f64(senders_total as f64 / rate))
        }
        Some(rate) => bail!("--rate must be above 0, not {rate}"),
    };
    let service = args
        .service
        .clone()
        .unwrap_or_else(|| format!("conference.{}", t.domain));
    if let Some(limit) = proc::open_files_limit()
        && limit < users as u64 + 64
    {
        eprintln!(
            "warning: open files limit is {limit}, below {users} users; raise it with `ulimit -n`"
        );
    }
    let pid = t.server_pid.map(|p| p.to_string());
    let server_rss = || pid.as_deref().and_then(|p| proc::status_kib(p, "VmRSS"));
    let rss_before = server_rss();
    if let Some(p) = &pid
        && rss_before.is_none()
    {
        bail!("cannot read /proc/{p}/status: is the server running on this machine?");
    }
    let mode = match args.rate {
        Some(rate) => format!("open rate={rate}"),
        None => format!("closed window={}", args.window.max(1)),
    };
    eprintln!(
        "muc: {users} users in {rooms} rooms of {} at {service}, {senders} senders each, \
         {mode}, {}s; against {}",
        args.room_size, args.duration, t.server
    );

    // Log in.
    let client = Arc::new(login::Client::new(&t, Mechanism::Plain, users)?);
    let logins = login::login_all(
        &client,
        t.first_user,
        users,
        t.concurrency,
        Duration::from_secs(args.ramp_timeout),
    )
    .await;
    eprintln!(
        "logins done in {:.1}s: {} established, {} failed",
        logins.elapsed.as_secs_f64(),
        logins.latencies.len(),
        logins.failed
    );
    if logins.failed > 0 {
        bail!("{} logins failed", logins.failed);
    }

    // Join, room by room: the first occupant creates the room.
    let base = Instant::now();
    let (go_tx, go_rx) = watch::channel(None);
    let shared = Arc::new(Shared {
        base,
        sent: (0..rooms).map(|_| AtomicU64::new(0)).collect(),
        delivered: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        last_delivery: AtomicU64::new(0),
        latency: Histogram::default(),
        late: AtomicU64::new(0),
        joins: Semaphore::new(args.join_concurrency),
        go: go_rx,
        cancel: CancellationToken::new(),
        args: args.clone(),
        service: service.clone(),
        interval,
        senders_total,
    });
    let (joined_tx, mut joined_rx) = mpsc::channel(1024);
    let mut tasks = JoinSet::new();
    let join_start = Instant::now();
    let mut sessions = logins.sessions.into_iter();
    for room in 0..rooms {
        // The room's creator says whether the room is ready (Some(true)).
        let ready = watch::channel(None);
        for place in 0..args.room_size {
            let account = t.first_user + room * args.room_size + place;
            let Some(Some(session)) = sessions.next() else {
                bail!("no session for account {account}");
            };
            let session = session.into_tls()?;
            let o = Occupant {
                session,
                splitter: Splitter::default(),
                room,
                place,
                room_jid: format!("{}{}@{}", args.room_prefix, room + 1, shared.service),
                nick: format!("u{account}"),
                received: 0,
                next_seq: vec![0; senders],
                out_of_order: 0,
                own_back: 0,
                joined: None,
                configured: None,
                join_error: None,
                replies: Vec::new(),
                closed: false,
            };
            tasks.spawn(occupant(
                o,
                shared.clone(),
                (ready.0.clone(), ready.1.clone()),
                joined_tx.clone(),
            ));
        }
    }
    drop(joined_tx);
    let mut joined = 0usize;
    let mut created = 0usize;
    let mut join_failed = 0usize;
    while let Some(r) = joined_rx.recv().await {
        match r {
            Ok(c) => {
                joined += 1;
                created += usize::from(c);
            }
            Err(e) => {
                join_failed += 1;
                if join_failed as u64 <= SHOWN {
                    eprintln!("join failed: {e:#}");
                }
            }
        }
    }
    let join_time = join_start.elapsed();
    eprintln!(
        "joins done in {:.1}s: {joined} joined ({created} rooms created), {join_failed} failed",
        join_time.as_secs_f64()
    );
    let stop = |tasks: &mut JoinSet<Outcome>| {
        shared.cancel.cancel();
        let mut tasks = std::mem::take(tasks);
        async move {
            let mut outcomes = Vec::new();
            let collect = async {
                while let Some(o) = tasks.join_next().await {
                    if let Ok(o) = o {
                        outcomes.push(o);
                    }
                }
            };
            if timeout(Duration::from_secs(10), collect).await.is_err() {
                eprintln!("some occupants did not stop in time");
            }
            outcomes
        }
    };
    if join_failed > 0 {
        stop(&mut tasks).await;
        bail!("{join_failed} occupants could not join");
    }
    sleep(Duration::from_secs(args.settle)).await;

    // Send.
    let rss_joined = server_rss();
    let cpu_before = CpuMark::now(pid.as_deref());
    let start = Instant::now();
    let send_end = start + Duration::from_secs(args.duration);
    let _ = go_tx.send(Some(Go { start, send_end }));
    let expected = || -> u64 {
        shared
            .sent
            .iter()
            .map(|s| s.load(Ordering::Relaxed) * args.room_size as u64)
            .sum()
    };
    let mut progress = tokio::time::interval(Duration::from_secs(2));
    progress.tick().await;
    loop {
        tokio::select! {
            _ = sleep_until(send_end) => break,
            _ = progress.tick() => eprintln!(
                "  {:>5.1}s sent {} delivered {} server RSS {} KiB",
                start.elapsed().as_secs_f64(),
                shared.sent.iter().map(|s| s.load(Ordering::Relaxed)).sum::<u64>(),
                shared.delivered.load(Ordering::Relaxed),
                kib(server_rss()),
            ),
        }
    }
    // Drain: wait for what is still on its way.
    let drain_end = send_end + Duration::from_secs(args.drain);
    while Instant::now() < drain_end && shared.delivered.load(Ordering::Relaxed) < expected() {
        sleep(Duration::from_millis(20)).await;
    }
    let end = Instant::now();
    let cpu = cpu_before.until(&CpuMark::now(pid.as_deref()));
    let rss_after = server_rss();
    let hwm = pid.as_deref().and_then(|p| proc::status_kib(p, "VmHWM"));
    let outcomes = stop(&mut tasks).await;

    let sent: u64 = shared.sent.iter().map(|s| s.load(Ordering::Relaxed)).sum();
    let expected = expected();
    let delivered = shared.delivered.load(Ordering::Relaxed);
    let mut lost = 0u64;
    let mut extra = 0u64;
    let mut out_of_order = 0u64;
    let mut closed = 0usize;
    for o in &outcomes {
        let should = shared.sent[o.room].load(Ordering::Relaxed);
        lost += should.saturating_sub(o.received);
        extra += o.received.saturating_sub(should);
        out_of_order += o.out_of_order;
        closed += usize::from(o.closed);
    }
    // Occupants whose task did not report count as receiving nothing.
    let missing = users.saturating_sub(outcomes.len());
    if missing > 0 {
        lost = lost.max(expected.saturating_sub(delivered));
    }
    let wall = end.saturating_duration_since(start).as_secs_f64();
    let busy_ns = shared
        .last_delivery
        .load(Ordering::Relaxed)
        .saturating_sub(shared.nanos(start));
    let busy = if busy_ns > 0 {
        busy_ns as f64 / 1e9
    } else {
        wall
    };
    let per_cpu_s = cpu.per_server_cpu_s(delivered);
    let mode = match args.rate {
        Some(rate) => format!("open rate={rate}"),
        None => format!("closed window={}", args.window.max(1)),
    };
    println!(
        "muc users={users} rooms={rooms} room_size={} senders={senders} mode={mode} \
         duration_s={} sent={sent} expected={expected} delivered={delivered} lost={lost} \
         extra={extra} out_of_order={out_of_order} errors={} closed={closed} late={} \
         delivered_per_s={:.0} lat_p50_ms={:.2} lat_p99_ms={:.2} lat_max_ms={:.2} \
         server_cpu_pct={} gen_cpu_pct={} delivered_per_server_cpu_s={per_cpu_s} \
         server_rss_before_kib={} server_rss_joined_kib={} server_rss_after_kib={} \
         server_hwm_kib={} join_s={:.1} gen_rss_kib={}",
        args.room_size,
        args.duration,
        shared.errors.load(Ordering::Relaxed),
        shared.late.load(Ordering::Relaxed),
        delivered as f64 / busy,
        shared.latency.percentile_ms(50.0),
        shared.latency.percentile_ms(99.0),
        shared.latency.max_ms(),
        cpu.server_pct(),
        cpu.generator_pct(),
        kib(rss_before),
        kib(rss_joined),
        kib(rss_after),
        kib(hwm),
        join_time.as_secs_f64(),
        kib(proc::status_kib("self", "VmRSS")),
    );
    if sent == 0 {
        bail!("no message was sent");
    }
    if lost > 0 {
        bail!("{lost} deliveries lost ({delivered} of {expected})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{parse_body, parse_sent};

    #[test]
    fn reads_the_benchmark_body() {
        let m = b"<message from='bench1@conference.localhost/u1' type='groupchat'>\
                  <body>jb 1 42 1234567890</body><stanza-id xmlns='urn:xmpp:sid:0'/></message>";
        assert_eq!(parse_body(m), Some((1, 42, 1234567890)));
        assert_eq!(parse_sent(m), None);
        let m5 = b"<message><body>jb 1 42 1234567890 1234567999</body></message>";
        assert_eq!(parse_body(m5), Some((1, 42, 1234567890)));
        assert_eq!(parse_sent(m5), Some(1234567999));
        assert_eq!(parse_body(b"<message><body>hello</body></message>"), None);
        assert_eq!(
            parse_body(b"<message><body>jb 1 x 3</body></message>"),
            None
        );
        assert_eq!(parse_body(b"<message><body>jb 1 2</body></message>"), None);
        assert_eq!(
            parse_body(b"<message><body>jb 1 2 99999999999999999999999</body></message>"),
            None
        );
    }
}

//! The `msg` scenario: one-to-one chat between the accounts of each pair
//! (PREFIX{2k-1} and PREFIX{2k}), both ways.
//!
//! One task drives both sessions of a pair, so that a delivery seen on one
//! side directly lets the other side send its next message (closed loop),
//! with no channel between tasks. A message is
//! `<message to='PARTNER@DOMAIN' type='chat'><body>jb PLACE SEQ NANOS</body></message>`
//! (PLACE: 0 or 1 in the pair; NANOS: planned send time since the run's
//! base instant), serialised from a prefix formatted once per session. Over
//! WebSocket the message also declares `xmlns='jabber:client'`, and each
//! goes in a text message of its own.
use super::muc::{parse_body, parse_sent};
use super::proc::{CpuMark, kib};
use super::scan::{Flow, Splitter, has_attr, snippet, start_tag};
use super::session::{Batch, Session};
use super::stats::Histogram;
use super::*;
use std::io::Write as _;
use std::sync::atomic::AtomicU64;
use tokio_util::sync::CancellationToken;

/// Problems printed in full; later ones are only counted.
const SHOWN: u64 = 5;
/// Open loop: a send is late when it leaves more than this after its
/// planned time (the timer's own resolution is 1 ms).
const LATE: Duration = Duration::from_millis(2);

/// State shared by every pair task.
struct Shared {
    /// The clock of the message timestamps.
    base: Instant,
    start: Instant,
    send_end: Instant,
    /// Closed loop: None. Open loop: the interval between two messages of one sender.
    interval: Option<Duration>,
    window: usize,
    sent: AtomicU64,
    delivered: AtomicU64,
    /// Error stanzas and unexpected requests received.
    errors: AtomicU64,
    late: AtomicU64,
    /// Latest delivery, in ns since `base`.
    last_delivery: AtomicU64,
    latency: Histogram,
    /// Latency from the moment each message was written (open loop:
    /// without the lateness of the generator's 1 ms timer).
    send_latency: Histogram,
    cancel: CancellationToken,
    /// After the drain, if messages are missing: each session sends a
    /// whitespace keepalive, to tell "held by the server until more
    /// input arrives" from "never sent or never read" (reported as
    /// `recovered_by_poke`).
    /// Open loop: senders that still have messages due. The drain must
    /// not start counting before they are done: a timer that fires late
    /// sends a message due before `send_end` after it.
    senders_left: AtomicU64,
    poke: CancellationToken,
}

impl Shared {
    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    fn error(&self, what: &str, stanza: &[u8]) {
        if self.errors.fetch_add(1, Ordering::Relaxed) < SHOWN {
            eprintln!("{what}: {}", snippet(stanza));
        }
    }
}

/// One session of a pair: a few counters besides its connection.
struct Side {
    session: Session,
    splitter: Splitter,
    /// `<message to='PARTNER' type='chat'><body>jb PLACE ` (with the
    /// namespace over WebSocket).
    prefix: Box<[u8]>,
    /// 0 or 1: the place in the pair, carried in the body.
    place: usize,
    /// Messages sent (the next sequence number).
    sent: u64,
    /// Messages received from the partner.
    received: u64,
    /// Next sequence number expected from the partner.
    next_seq: u64,
    out_of_order: u64,
    /// Open loop: when the next message is due.
    due: Option<Instant>,
    closed: bool,
}

impl Side {
    /// Handle `data` just read (empty: the connection closed). Returns
    /// how many of the partner's messages came.
    async fn feed(&mut self, data: &[u8], shared: &Shared) -> anyhow::Result<u64> {
        if data.is_empty() {
            self.closed = true;
            bail!("connection closed by the server");
        }
        let now = shared.nanos(Instant::now());
        let ns = self.session.stanza_ns();
        let mut splitter = std::mem::take(&mut self.splitter);
        let mut got = 0u64;
        let mut replies = Batch::default();
        let flow = splitter.feed(data, |stanza| {
            let tag = start_tag(stanza);
            if tag.starts_with(b"<message") {
                if has_attr(tag, "type", "error") {
                    shared.error("error message", stanza);
                    return;
                }
                let Some((sender, seq, sent_at)) = parse_body(stanza) else {
                    return;
                };
                if sender == self.place {
                    shared.error("own message came back", stanza);
                    return;
                }
                got += 1;
                shared.latency.record_us(now.saturating_sub(sent_at) / 1000);
                if let Some(written) = parse_sent(stanza) {
                    shared
                        .send_latency
                        .record_us(now.saturating_sub(written) / 1000);
                }
                if seq < self.next_seq {
                    self.out_of_order += 1;
                }
                self.next_seq = self.next_seq.max(seq + 1);
            } else if tag.starts_with(b"<iq") {
                if let Some(reply) = login::ping_reply(stanza, ns) {
                    replies.push(reply.as_bytes());
                } else if has_attr(tag, "type", "get") || has_attr(tag, "type", "set") {
                    shared.error("unexpected request", stanza);
                }
            }
        });
        self.splitter = splitter;
        if got > 0 {
            self.received += got;
            shared.delivered.fetch_add(got, Ordering::Relaxed);
            shared.last_delivery.fetch_max(now, Ordering::Relaxed);
        }
        if flow == Flow::Closed {
            self.closed = true;
            bail!("stream closed by the server");
        }
        if !replies.is_empty() {
            self.session.send_batch(&replies).await?;
        }
        Ok(got)
    }

    /// Append the next message, planned at `at` and written at
    /// `written` (ns), to `out`.
    fn message(&mut self, out: &mut Batch, at: u64, written: u64) {
        let buf = out.buf();
        buf.extend_from_slice(&self.prefix);
        let _ = write!(buf, "{} {at} {written}</body></message>", self.sent);
        out.end();
        self.sent += 1;
    }

    /// Closed loop: send `count` messages now, unless sending is over.
    async fn send_now(
        &mut self,
        count: u64,
        shared: &Shared,
        out: &mut Batch,
    ) -> anyhow::Result<()> {
        let now = Instant::now();
        if count == 0 || now >= shared.send_end {
            return Ok(());
        }
        out.clear();
        let at = shared.nanos(now);
        for _ in 0..count {
            self.message(out, at, at);
        }
        // Counted before the write: the drain after `send_end` waits for
        // delivered == sent, and must not end while a write is under way.
        shared.sent.fetch_add(count, Ordering::Relaxed);
        self.session.send_batch(out).await?;
        Ok(())
    }

    /// Open loop: send every message due by `now`, each stamped with
    /// its planned time (a late generator shows as latency).
    async fn send_due(
        &mut self,
        now: Instant,
        shared: &Shared,
        out: &mut Batch,
    ) -> anyhow::Result<()> {
        let (Some(interval), Some(mut at)) = (shared.interval, self.due) else {
            return Ok(());
        };
        out.clear();
        let (mut count, mut late) = (0u64, 0u64);
        let written = shared.nanos(Instant::now());
        while at <= now && at < shared.send_end {
            self.message(out, shared.nanos(at), written);
            count += 1;
            late += u64::from(now.saturating_duration_since(at) > LATE);
            at += interval;
        }
        self.due = (at < shared.send_end).then_some(at);
        if self.due.is_none() {
            shared.senders_left.fetch_sub(1, Ordering::Relaxed);
        }
        if count > 0 {
            // Counted before the write (see `send_now`).
            shared.sent.fetch_add(count, Ordering::Relaxed);
            self.session.send_batch(out).await?;
            if late > 0 {
                shared.late.fetch_add(late, Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

/// What a pair saw, returned when its task ends.
struct Outcome {
    pair: usize,
    /// Per side: messages sent, and received from the partner.
    sent: [u64; 2],
    received: [u64; 2],
    next_seq: [u64; 2],
    out_of_order: u64,
    /// Sessions the server closed.
    closed: usize,
}

async fn pair(index: usize, mut a: Side, mut b: Side, shared: Arc<Shared>) -> Outcome {
    if let Err(e) = exchange(&mut a, &mut b, &shared).await
        && shared.errors.fetch_add(1, Ordering::Relaxed) < SHOWN
    {
        eprintln!("pair failed: {e:#}");
    }
    Outcome {
        pair: index,
        sent: [a.sent, b.sent],
        received: [a.received, b.received],
        next_seq: [a.next_seq, b.next_seq],
        out_of_order: a.out_of_order + b.out_of_order,
        closed: usize::from(a.closed) + usize::from(b.closed),
    }
}

/// Send and receive on both sessions until cancelled.
async fn exchange(a: &mut Side, b: &mut Side, shared: &Shared) -> anyhow::Result<()> {
    tokio::select! {
        _ = sleep_until(shared.start) => {}
        _ = shared.cancel.cancelled() => return Ok(()),
    }
    let closed_loop = shared.interval.is_none();
    let mut out = Batch::with_capacity(128 * shared.window.max(1));
    if closed_loop {
        a.send_now(shared.window as u64, shared, &mut out).await?;
        b.send_now(shared.window as u64, shared, &mut out).await?;
    }
    let mut buf_a = [0u8; 2048];
    let mut buf_b = [0u8; 2048];
    let mut poked = false;
    loop {
        let due = match (a.due, b.due) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        tokio::select! {
            read = a.session.read(&mut buf_a) => {
                let n = read.unwrap_or(0);
                let back = a.feed(&buf_a[..n], shared).await?;
                if closed_loop {
                    b.send_now(back, shared, &mut out).await?;
                }
            }
            read = b.session.read(&mut buf_b) => {
                let n = read.unwrap_or(0);
                let back = b.feed(&buf_b[..n], shared).await?;
                if closed_loop {
                    a.send_now(back, shared, &mut out).await?;
                }
            }
            _ = sleep_until(due.unwrap_or(shared.send_end)), if due.is_some() => {
                let now = Instant::now();
                a.send_due(now, shared, &mut out).await?;
                b.send_due(now, shared, &mut out).await?;
            }
            _ = shared.poke.cancelled(), if !poked => {
                poked = true;
                a.session.keepalive().await?;
                b.session.keepalive().await?;
            }
            _ = shared.cancel.cancelled() => return Ok(()),
        }
    }
}

pub async fn run(args: MsgArgs) -> anyhow::Result<()> {
    let t = args.target.clone();
    if t.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let pairs = t.users / 2;
    if pairs == 0 {
        bail!("--users must be at least 2");
    }
    let users = pairs * 2;
    if users < t.users {
        eprintln!("warning: one user left out (odd --users)");
    }
    let interval = match args.rate {
        None => None,
        Some(rate) if rate > 0.0 && rate.is_finite() => {
            Some(Duration::from_secs_f64(users as f64 / rate))
        }
        Some(rate) => bail!("--rate must be above 0, not {rate}"),
    };
    let window = args.window.max(1);
    let mode = match args.rate {
        Some(rate) => format!("open rate={rate}"),
        None => format!("closed window={window}"),
    };
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
    eprintln!(
        "msg: {users} users in {pairs} pairs, {mode}, {}s; over {} against {}",
        args.duration,
        t.transport.name(),
        t.server
    );

    let client = Arc::new(login::Client::new(&t, Mechanism::Plain, users)?);
    let logins = login::login_all(
        &client,
        t.first_user,
        users,
        t.concurrency,
        Duration::from_secs(args.ramp_timeout),
    )
    .await;
    let login_s = logins.elapsed.as_secs_f64();
    eprintln!(
        "logins done in {login_s:.1}s: {} established, {} failed",
        logins.latencies.len(),
        logins.failed
    );
    if logins.failed > 0 {
        bail!("{} logins failed", logins.failed);
    }
    sleep(Duration::from_secs(args.settle)).await;
    let rss_ready = server_rss();

    let base = Instant::now();
    // Leave the tasks time to be spawned before the first send.
    let start = base + Duration::from_millis(50);
    let send_end = start + Duration::from_secs(args.duration);
    let shared = Arc::new(Shared {
        base,
        start,
        send_end,
        interval,
        window,
        sent: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        late: AtomicU64::new(0),
        last_delivery: AtomicU64::new(0),
        latency: Histogram::default(),
        send_latency: Histogram::default(),
        cancel: CancellationToken::new(),
        senders_left: AtomicU64::new(if interval.is_some() { users as u64 } else { 0 }),
        poke: CancellationToken::new(),
    });
    let mut tasks = JoinSet::new();
    let mut sessions = logins.sessions.into_iter();
    for p in 0..pairs {
        let mut side = |place: usize| -> anyhow::Result<Side> {
            let index = 2 * p + place;
            let Some(Some(session)) = sessions.next() else {
                bail!("no session for account {}", t.first_user + index);
            };
            let partner = t.first_user + 2 * p + (1 - place);
            let prefix = format!(
                "<message{} to='{}{partner}@{}' type='chat'><body>jb {place} ",
                session.stanza_ns(),
                t.user_prefix,
                t.domain
            );
            // Open loop: senders spread evenly over one interval.
            let due =
                interval.map(|interval| start + interval.mul_f64(index as f64 / users as f64));
            Ok(Side {
                session,
                splitter: Splitter::default(),
                prefix: prefix.into_bytes().into_boxed_slice(),
                place,
                sent: 0,
                received: 0,
                next_seq: 0,
                out_of_order: 0,
                due,
                closed: false,
            })
        };
        let a = side(0)?;
        let b = side(1)?;
        tasks.spawn(pair(p, a, b, shared.clone()));
    }

    sleep_until(start).await;
    let cpu_before = CpuMark::now(pid.as_deref());
    let mut progress = tokio::time::interval(Duration::from_secs(2));
    progress.tick().await;
    loop {
        tokio::select! {
            _ = sleep_until(send_end) => break,
            _ = progress.tick() => eprintln!(
                "  {:>5.1}s sent {} delivered {} server RSS {} KiB",
                start.elapsed().as_secs_f64(),
                shared.sent.load(Ordering::Relaxed),
                shared.delivered.load(Ordering::Relaxed),
                kib(server_rss()),
            ),
        }
    }
    // Drain: wait for what is still on its way.
    let drain_end = send_end + Duration::from_secs(args.drain);
    while Instant::now() < drain_end
        && (shared.senders_left.load(Ordering::Relaxed) > 0
            || shared.delivered.load(Ordering::Relaxed) < shared.sent.load(Ordering::Relaxed))
    {
        sleep(Duration::from_millis(20)).await;
    }
    let cpu = cpu_before.until(&CpuMark::now(pid.as_deref()));
    let rss_after = server_rss();
    let hwm = pid.as_deref().and_then(|p| proc::status_kib(p, "VmHWM"));
    let missing_before_poke = shared
        .sent
        .load(Ordering::Relaxed)
        .saturating_sub(shared.delivered.load(Ordering::Relaxed));
    if missing_before_poke > 0 {
        shared.poke.cancel();
        let poke_end = Instant::now() + Duration::from_secs(2);
        while Instant::now() < poke_end
            && shared.delivered.load(Ordering::Relaxed) < shared.sent.load(Ordering::Relaxed)
        {
            sleep(Duration::from_millis(20)).await;
        }
        let missing_after = shared
            .sent
            .load(Ordering::Relaxed)
            .saturating_sub(shared.delivered.load(Ordering::Relaxed));
        eprintln!(
            "{missing_before_poke} missing after the drain; {} arrived after a whitespace keepalive on every session",
            missing_before_poke - missing_after
        );
    }
    shared.cancel.cancel();
    let mut outcomes = Vec::with_capacity(pairs);
    let collect = async {
        while let Some(o) = tasks.join_next().await {
            if let Ok(o) = o {
                outcomes.push(o);
            }
        }
    };
    if timeout(Duration::from_secs(10), collect).await.is_err() {
        eprintln!("some pairs did not stop in time");
    }

    let sent = shared.sent.load(Ordering::Relaxed);
    let delivered = shared.delivered.load(Ordering::Relaxed);
    let (mut lost, mut extra, mut out_of_order, mut closed) = (0u64, 0u64, 0u64, 0usize);
    let mut shown = 0;
    for o in &outcomes {
        for side in 0..2 {
            let (sent, received) = (o.sent[side], o.received[1 - side]);
            if sent != received && shown < SHOWN {
                shown += 1;
                eprintln!(
                    "pair {}: account {} sent {sent}, its partner received {received} \
                     (next sequence number expected {})",
                    o.pair,
                    t.first_user + 2 * o.pair + side,
                    o.next_seq[1 - side]
                );
            }
            lost += sent.saturating_sub(received);
            extra += received.saturating_sub(sent);
        }
        out_of_order += o.out_of_order;
        closed += o.closed;
    }
    if outcomes.len() < pairs {
        // Pairs that did not report: count what is missing overall.
        lost = lost.max(sent.saturating_sub(delivered));
    }
    let busy_ns = shared
        .last_delivery
        .load(Ordering::Relaxed)
        .saturating_sub(shared.nanos(start));
    let busy = if busy_ns > 0 {
        busy_ns as f64 / 1e9
    } else {
        cpu.wall_s
    };
    println!(
        "msg users={users} pairs={pairs} transport={} mode={mode} duration_s={} sent={sent} \
         delivered={delivered} lost={lost} extra={extra} out_of_order={out_of_order} \
         errors={} closed={closed} late={} delivered_per_s={:.0} lat_p50_ms={:.2} \
         lat_p99_ms={:.2} lat_max_ms={:.2} send_lat_p50_ms={:.2} send_lat_p99_ms={:.2} \
         send_lat_max_ms={:.2} server_cpu_pct={} gen_cpu_pct={} \
         delivered_per_server_cpu_s={} server_rss_before_kib={} server_rss_ready_kib={} \
         server_rss_after_kib={} server_hwm_kib={} login_s={login_s:.1} gen_rss_kib={}",
        t.transport.name(),
        args.duration,
        shared.errors.load(Ordering::Relaxed),
        shared.late.load(Ordering::Relaxed),
        delivered as f64 / busy.max(1e-9),
        shared.latency.percentile_ms(50.0),
        shared.latency.percentile_ms(99.0),
        shared.latency.max_ms(),
        shared.send_latency.percentile_ms(50.0),
        shared.send_latency.percentile_ms(99.0),
        shared.send_latency.max_ms(),
        cpu.server_pct(),
        cpu.generator_pct(),
        cpu.per_server_cpu_s(delivered),
        kib(rss_before),
        kib(rss_ready),
        kib(rss_after),
        kib(hwm),
        kib(proc::status_kib("self", "VmRSS")),
    );
    if sent == 0 {
        bail!("no message was sent");
    }
    if lost > 0 {
        bail!("{lost} messages lost ({delivered} of {sent} delivered)");
    }
    Ok(())
}

//! The `storm` scenario: hostile input from authenticated users.
//!
//! `--users` accounts log in and send stanzas from a corpus of real client
//! stanzas (bench/storm-corpus.xml), most of them mutated: characters XML
//! forbids (raw and as references), flipped and random bytes, cut and
//! duplicated slices, stanzas blown up past the size limit, deep nesting,
//! hundreds of attributes, hostile addresses, restricted XML, stream
//! restarts and closes, and hundreds of `xml:lang` bodies. A session the
//! server closes logs in again and goes on until the end of the run.
//!
//! Meanwhile two more accounts (the next two numbers) are the probes: every
//! `--probe-every` milliseconds they log in afresh and one sends the other
//! a message; a probe succeeds if the message arrives within
//! `--probe-timeout` seconds of the first connection. With `--server-pid`,
//! the server's resident memory is sampled throughout.
//!
//! Everything is driven by `--seed`: each session's sequence of stanzas is
//! the same from run to run (timing, and so what the server sees between
//! them, is not). The tool exits non-zero if the server process died or a
//! probe failed.
use super::*;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// The corpus: one stanza per line; `{peer}`, `{me}`, `{room}`, `{domain}`
/// and `{id}` are filled in per stanza.
const CORPUS: &str = include_str!("../../../bench/storm-corpus.xml");
/// What a probe message carries, with a unique number.
const PROBE_MARK: &str = "storm-probe-";

#[derive(Args, Debug, Clone)]
pub struct StormArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Seconds of storm.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Seed of every session's sequence of stanzas.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Stanzas per second across all hostile sessions (0: as fast as they go).
    #[arg(long, default_value_t = 2000)]
    rate: u64,
    /// Share of stanzas sent mutated, in percent.
    #[arg(long, default_value_t = 80)]
    mutate: u32,
    /// Milliseconds between probes (a probe starts when the previous one ends, at the earliest).
    #[arg(long, default_value_t = 1000)]
    probe_every: u64,
    /// Seconds a probe may take, from connecting to the message received.
    #[arg(long, default_value_t = 5)]
    probe_timeout: u64,
    /// Seconds to wait after the storm before the last memory reading.
    #[arg(long, default_value_t = 5)]
    settle: u64,
}

/// What the run counted.
#[derive(Default)]
struct Counts {
    sent: AtomicUsize,
    mutated: AtomicUsize,
    bytes: AtomicUsize,
    /// Streams the server ended (stream error or close).
    closed: AtomicUsize,
    /// Of those, ended with a stream error: by condition.
    conditions: std::sync::Mutex<std::collections::BTreeMap<String, usize>>,
    logins: AtomicUsize,
    login_failures: AtomicUsize,
    probes: AtomicUsize,
    probe_failures: AtomicUsize,
    probe_times: std::sync::Mutex<Vec<Duration>>,
}

pub async fn run(args: StormArgs) -> anyhow::Result<()> {
    let t = &args.target;
    t.require_tcp("storm")?;
    let sessions = t.users;
    if sessions == 0 {
        bail!("--users must be at least 1");
    }
    let client = Arc::new(login::Client::new(t, Mechanism::Plain, sessions * 4)?);
    let counts = Arc::new(Counts::default());
    let corpus: Arc<Vec<String>> = Arc::new(
        CORPUS
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect(),
    );
    let pid = t.server_pid.map(|p| p.to_string());
    let rss = |pid: &Option<String>| pid.as_deref().and_then(|p| proc::status_kib(p, "VmRSS"));
    let rss_start = rss(&pid);
    let cpu_start = proc::CpuMark::now(pid.as_deref());
    let start = Instant::now();
    let end = start + Duration::from_secs(args.duration);
    // Per-session pace: the total rate spread over the sessions.
    let gap = (args.rate > 0).then(|| Duration::from_secs_f64(sessions as f64 / args.rate as f64));

    let mut tasks = JoinSet::new();
    for i in 0..sessions {
        let client = client.clone();
        let counts = counts.clone();
        let corpus = corpus.clone();
        let ctx = Addresses {
            me: format!("{}{}@{}", t.user_prefix, t.first_user + i, t.domain),
            peer: format!(
                "{}{}@{}",
                t.user_prefix,
                t.first_user + (i + 1) % sessions,
                t.domain
            ),
            room: format!("storm{}@conference.{}", i % 8, t.domain),
            domain: t.domain.clone(),
        };
        let seed = args.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i as u64;
        let mutate = args.mutate;
        let first_user = t.first_user;
        tasks.spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed);
            hostile_session(
                &client,
                i,
                first_user + i,
                &ctx,
                &corpus,
                &mut rng,
                mutate,
                gap,
                end,
                &counts,
            )
            .await
        });
    }
    // The probes, one after the other until the end.
    let probe = {
        let client = client.clone();
        let counts = counts.clone();
        let a = t.first_user + sessions;
        let b = a + 1;
        let b_jid = format!("{}{}@{}", t.user_prefix, b, t.domain);
        let every = Duration::from_millis(args.probe_every);
        let limit = Duration::from_secs(args.probe_timeout);
        tokio::spawn(async move {
            let mut n = 0usize;
            while Instant::now() < end {
                let next = Instant::now() + every;
                n += 1;
                let began = Instant::now();
                let outcome =
                    timeout(limit, probe_once(&client, sessions + 1, a, b, &b_jid, n)).await;
                counts.probes.fetch_add(1, Ordering::Relaxed);
                match outcome {
                    Ok(Ok(())) => counts
                        .probe_times
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(began.elapsed()),
                    Ok(Err(e)) => {
                        counts.probe_failures.fetch_add(1, Ordering::Relaxed);
                        eprintln!("storm: probe {n} failed: {e:#}");
                    }
                    Err(_) => {
                        counts.probe_failures.fetch_add(1, Ordering::Relaxed);
                        eprintln!("storm: probe {n} took more than {limit:?}");
                    }
                }
                sleep_until(next).await;
            }
        })
    };
    // Memory, sampled while the storm lasts.
    let mut rss_peak = rss_start;
    while Instant::now() < end {
        sleep(Duration::from_millis(100)).await;
        if let Some(now) = rss(&pid) {
            rss_peak = Some(rss_peak.map_or(now, |p| p.max(now)));
        }
    }
    // Sessions stop at `end`; a write or login in progress gets a little longer.
    let _ = timeout(Duration::from_secs(15), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    let _ = timeout(Duration::from_secs(10), probe).await;
    let cpu = cpu_start.until(&proc::CpuMark::now(pid.as_deref()));
    let rss_end = rss(&pid);
    sleep(Duration::from_secs(args.settle)).await;
    let rss_settled = rss(&pid);
    let alive = match &pid {
        Some(p) => std::path::Path::new(&format!("/proc/{p}")).exists(),
        None => true,
    };

    let c = &counts;
    let load = |a: &AtomicUsize| a.load(Ordering::Relaxed);
    let mut times = c
        .probe_times
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    times.sort();
    let conditions = c
        .conditions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(k, v)| format!("{k}:{v}"))
        .collect::<Vec<_>>()
        .join(",");
    let growth = match (rss_start, rss_peak) {
        (Some(s), Some(p)) => p.saturating_sub(s).to_string(),
        _ => "-".into(),
    };
    println!(
        "storm sessions={sessions} duration_s={} seed={} sent={} mutated={} bytes={} server_closed={} \
         logins={} login_failures={} probes={} probe_failures={} probe_p50_ms={:.1} probe_max_ms={:.1} \
         rss_start_kib={} rss_peak_kib={} rss_end_kib={} rss_settled_kib={} rss_growth_kib={growth} \
         server_cpu={} server_alive={} stream_errors={}",
        args.duration,
        args.seed,
        load(&c.sent),
        load(&c.mutated),
        load(&c.bytes),
        load(&c.closed),
        load(&c.logins),
        load(&c.login_failures),
        load(&c.probes),
        load(&c.probe_failures),
        stats::percentile_ms(&times, 50.0),
        times.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        proc::kib(rss_start),
        proc::kib(rss_peak),
        proc::kib(rss_end),
        proc::kib(rss_settled),
        cpu.server_pct(),
        if alive { "yes" } else { "no" },
        if conditions.is_empty() {
            "-".into()
        } else {
            conditions
        },
    );
    if !alive {
        bail!("the server process is gone");
    }
    if load(&c.probe_failures) > 0 || load(&c.probes) == 0 {
        bail!(
            "{} of {} probes failed",
            load(&c.probe_failures),
            load(&c.probes)
        );
    }
    Ok(())
}

/// The addresses a session's stanzas use.
struct Addresses {
    me: String,
    peer: String,
    room: String,
    domain: String,
}

/// Log in, send until the server closes the stream, log in again; until `end`.
#[allow(clippy::too_many_arguments)]
async fn hostile_session(
    client: &login::Client,
    index: usize,
    account: usize,
    ctx: &Addresses,
    corpus: &[String],
    rng: &mut StdRng,
    mutate: u32,
    gap: Option<Duration>,
    end: Instant,
    counts: &Counts,
) {
    while Instant::now() < end {
        counts.logins.fetch_add(1, Ordering::Relaxed);
        let session = match timeout_at(end, client.login_tls(index, account)).await {
            Ok(Ok(s)) => s,
            Ok(Err(_)) => {
                counts.login_failures.fetch_add(1, Ordering::Relaxed);
                // A server under load, or throttling: do not hammer it.
                sleep(Duration::from_millis(200)).await;
                continue;
            }
            Err(_) => return,
        };
        let (mut reader, mut writer) = tokio::io::split(session);
        // The reader keeps the end of what it read, to find the stream error.
        let read = tokio::spawn(async move {
            let mut tail: Vec<u8> = Vec::new();
            let mut chunk = vec![0u8; 16 * 1024];
            loop {
                match reader.read(&mut chunk).await {
                    Ok(0) | Err(_) => return tail,
                    Ok(n) => {
                        tail.extend_from_slice(&chunk[..n]);
                        if tail.len() > 4096 {
                            tail.drain(..tail.len() - 4096);
                        }
                    }
                }
            }
        });
        let mut next = Instant::now();
        loop {
            if Instant::now() >= end || read.is_finished() {
                break;
            }
            let line = &corpus[rng.random_range(0..corpus.len())];
            let mut stanza = fill(line, ctx, rng).into_bytes();
            if rng.random_range(0..100) < mutate {
                mutate_stanza(&mut stanza, ctx, rng);
                counts.mutated.fetch_add(1, Ordering::Relaxed);
            }
            let write = timeout_at(end, async {
                writer.write_all(&stanza).await?;
                writer.flush().await
            })
            .await;
            match write {
                Ok(Ok(())) => {
                    counts.sent.fetch_add(1, Ordering::Relaxed);
                    counts.bytes.fetch_add(stanza.len(), Ordering::Relaxed);
                }
                _ => break,
            }
            if let Some(gap) = gap {
                next += gap;
                sleep_until(next).await;
            }
        }
        if Instant::now() >= end {
            read.abort();
            return;
        }
        // The server ended the stream: note why, then start again.
        let tail = timeout(Duration::from_secs(5), read)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        counts.closed.fetch_add(1, Ordering::Relaxed);
        let condition = stream_condition(&tail).unwrap_or_else(|| "none".into());
        *counts
            .conditions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(condition)
            .or_default() += 1;
    }
}

/// The condition of the last stream error in `tail`, if any.
fn stream_condition(tail: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(tail);
    let start = text.rfind("<stream:error")?;
    let ns = "urn:ietf:params:xml:ns:xmpp-streams";
    // The first element of that namespace is the condition (a <text> follows it).
    let at = start + text[start..].find(ns)?;
    let open = text[..at].rfind('<')?;
    let name: String = text[open + 1..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// A corpus line with its placeholders filled in.
fn fill(line: &str, ctx: &Addresses, rng: &mut StdRng) -> String {
    line.replace("{peer}", &ctx.peer)
        .replace("{me}", &ctx.me)
        .replace("{room}", &ctx.room)
        .replace("{domain}", &ctx.domain)
        .replace("{id}", &rng.random_range(0..1_000_000u32).to_string())
}

/// Characters XML forbids, raw (as UTF-8) and as references.
const FORBIDDEN_RAW: &[&str] = &[
    "\u{0}", "\u{1}", "\u{8}", "\u{b}", "\u{c}", "\u{e}", "\u{1b}", "\u{1f}", "\u{fffe}",
    "\u{ffff}",
];
const FORBIDDEN_REFS: &[&str] = &[
    "&#0;",
    "&#x0;",
    "&#1;",
    "&#x1B;",
    "&#xFFFE;",
    "&#xFFFF;",
    "&#xD800;",
    "&#x110000;",
    "&#;",
    "&#xZZ;",
    "&undefined;",
];
/// Addresses a client should not be able to hurt the server with.
const HOSTILE_TO: &[&str] = &[
    "",
    "@",
    "@{domain}",
    "a@b@{domain}",
    "{domain}/",
    "user@{domain}/",
    "nobody@unknown.example",
    "[::1]",
    "user@{domain}/\u{200b}",
    "ROOT@{domain}",
    "x@conference.{domain}/",
];

/// Apply one mutation.
fn mutate_stanza(s: &mut Vec<u8>, ctx: &Addresses, rng: &mut StdRng) {
    let at = |rng: &mut StdRng, s: &Vec<u8>| rng.random_range(0..=s.len());
    match rng.random_range(0..14) {
        0 => {
            let c = FORBIDDEN_RAW[rng.random_range(0..FORBIDDEN_RAW.len())];
            let i = char_boundary(s, at(rng, s));
            s.splice(i..i, c.bytes());
        }
        1 => {
            let r = FORBIDDEN_REFS[rng.random_range(0..FORBIDDEN_REFS.len())];
            let i = char_boundary(s, at(rng, s));
            s.splice(i..i, r.bytes());
        }
        2 => {
            // Random bytes over random places (invalid UTF-8 included).
            for _ in 0..rng.random_range(1..5) {
                if !s.is_empty() {
                    let i = rng.random_range(0..s.len());
                    s[i] = rng.random();
                }
            }
        }
        3 => {
            // Cut short: the next stanza lands inside this one.
            let i = at(rng, s);
            s.truncate(i);
        }
        4 => {
            let (a, b) = span(s, rng);
            let copy = s[a..b].to_vec();
            s.splice(b..b, copy);
        }
        5 => {
            let (a, b) = span(s, rng);
            s.drain(a..b);
        }
        6 => {
            // Blown up: the content repeated to 8 KB .. 400 KB (past the
            // usual 256 KiB limit now and then).
            let target = rng.random_range(8_000..400_000);
            if let (Some(open), Some(close)) = (
                s.iter().position(|&b| b == b'>'),
                s.iter().rposition(|&b| b == b'<'),
            ) && open + 1 < close
            {
                let inner = s[open + 1..close].to_vec();
                let mut grown = s[..=open].to_vec();
                while grown.len() < target {
                    grown.extend_from_slice(&inner);
                }
                grown.extend_from_slice(&s[close..]);
                *s = grown;
            }
        }
        7 => {
            let depth = rng.random_range(10..200);
            let mut out = b"<message to='".to_vec();
            out.extend_from_slice(ctx.peer.as_bytes());
            out.extend_from_slice(b"'>");
            out.extend(std::iter::repeat_n(&b"<x xmlns='urn:deep'>"[..], depth).flatten());
            out.extend(std::iter::repeat_n(&b"</x>"[..], depth).flatten());
            out.extend_from_slice(b"</message>");
            *s = out;
        }
        8 => {
            let n = rng.random_range(10..300);
            let attrs: String = (0..n).map(|i| format!(" a{i}='{i}'")).collect();
            if let Some(i) = s.iter().position(|&b| b == b' ' || b == b'>') {
                s.splice(i..i, attrs.bytes());
            }
        }
        9 => {
            let to =
                HOSTILE_TO[rng.random_range(0..HOSTILE_TO.len())].replace("{domain}", &ctx.domain);
            let long = "x".repeat(rng.random_range(1..3000));
            let to = if rng.random_bool(0.2) { long } else { to };
            let text = String::from_utf8_lossy(s).into_owned();
            let replaced = match text.find(" to='") {
                Some(i) => {
                    let rest = &text[i + 5..];
                    let end = rest.find('\'').unwrap_or(0);
                    format!("{} to='{}'{}", &text[..i], to, &rest[end + 1..])
                }
                None => text.replacen(' ', &format!(" to='{to}' "), 1),
            };
            *s = replaced.into_bytes();
        }
        10 => {
            let junk = [
                "<!-- comment -->",
                "<?pi x?>",
                "<!DOCTYPE x>",
                "<p:x/>",
                "<x xmlns:p=''/>",
                "<![CDATA[",
                "]]>",
                "&lol;",
                "<a b='1' b='2'/>",
            ];
            let j = junk[rng.random_range(0..junk.len())];
            let i = char_boundary(s, at(rng, s));
            s.splice(i..i, j.bytes());
        }
        11 => {
            let stream = [
                "</stream:stream>",
                "<stream:stream to='{domain}' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
                "<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
                "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
                "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>",
                "<unknown-top-level/>",
            ];
            *s = stream[rng.random_range(0..stream.len())]
                .replace("{domain}", &ctx.domain)
                .into_bytes();
        }
        12 => {
            // Hundreds of bodies in as many languages (XEP-0201 allows it).
            let n = rng.random_range(100..2000);
            let bodies: String = (0..n)
                .map(|i| format!("<body xml:lang='l{i}'>hello {i}</body>"))
                .collect();
            *s = format!(
                "<message to='{}' type='chat' id='langs'>{bodies}</message>",
                ctx.peer
            )
            .into_bytes();
        }
        _ => {
            // Several small mutations at once.
            for _ in 0..rng.random_range(2..5) {
                mutate_once_small(s, rng);
            }
        }
    }
}

/// A cheap mutation, for combinations.
fn mutate_once_small(s: &mut Vec<u8>, rng: &mut StdRng) {
    if s.is_empty() {
        return;
    }
    let i = rng.random_range(0..s.len());
    match rng.random_range(0..3) {
        0 => s[i] = rng.random(),
        1 => {
            s.remove(i);
        }
        _ => {
            let c = FORBIDDEN_RAW[rng.random_range(0..FORBIDDEN_RAW.len())];
            let i = char_boundary(s, i);
            s.splice(i..i, c.bytes());
        }
    }
}

/// A random non-empty range of `s` (empty if `s` is).
fn span(s: &[u8], rng: &mut StdRng) -> (usize, usize) {
    if s.is_empty() {
        return (0, 0);
    }
    let a = rng.random_range(0..s.len());
    let b = rng.random_range(a..=s.len().min(a + 64));
    (a, b)
}

/// `i` moved back to the start of a UTF-8 character, so that an insertion
/// does not also split a character (that is mutation 2's job).
fn char_boundary(s: &[u8], mut i: usize) -> usize {
    while i > 0 && i < s.len() && (s[i] & 0xC0) == 0x80 {
        i -= 1;
    }
    i
}

/// Log the two probe accounts in, send from one to the other, wait for it.
async fn probe_once(
    client: &login::Client,
    index: usize,
    a: usize,
    b: usize,
    b_jid: &str,
    n: usize,
) -> anyhow::Result<()> {
    let (sa, sb) = tokio::join!(client.login_tls(index, a), client.login_tls(index + 1, b));
    let mut sa = sa.context("probe sender login")?;
    let mut sb = sb.context("probe receiver login")?;
    let mark = format!("{PROBE_MARK}{n}");
    let msg = format!("<message to='{b_jid}' type='chat'><body>{mark}</body></message>");
    sa.write_all(msg.as_bytes()).await?;
    sa.flush().await?;
    let mut seen: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let got = sb.read(&mut chunk).await?;
        if got == 0 {
            bail!("the receiver's stream closed");
        }
        seen.extend_from_slice(&chunk[..got]);
        if String::from_utf8_lossy(&seen).contains(&mark) {
            break;
        }
        if seen.len() > 1 << 20 {
            seen.drain(..seen.len() - 4096);
        }
    }
    for s in [&mut sa, &mut sb] {
        let _ = s.write_all(b"</stream:stream>").await;
        let _ = s.shutdown().await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Addresses {
        Addresses {
            me: "user1@d".into(),
            peer: "user2@d".into(),
            room: "storm1@conference.d".into(),
            domain: "d".into(),
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_stanzas() {
        let corpus: Vec<&str> = CORPUS.lines().collect();
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..200)
                .map(|_| {
                    let line = corpus[rng.random_range(0..corpus.len())];
                    let mut s = fill(line, &ctx(), &mut rng).into_bytes();
                    mutate_stanza(&mut s, &ctx(), &mut rng);
                    s
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn finds_the_stream_error() {
        let tail = b"<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>x</text></stream:error>";
        assert_eq!(stream_condition(tail).as_deref(), Some("not-well-formed"));
        let only = b"<stream:error><policy-violation xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/></stream:error>";
        assert_eq!(stream_condition(only).as_deref(), Some("policy-violation"));
    }
}

//! The `idle` scenario.
use super::*;

use super::proc::kib;
use super::session::Session;

/// Login errors printed in full; later ones are only counted.
const ERRORS_SHOWN: usize = 5;

/// Protocol version, cipher suite and key exchange group of a session
/// (`none` over WebSocket: the generator speaks `ws://`).
fn negotiated(session: &Session) -> String {
    let Session::Tls(tls) = session else {
        return "none".to_owned();
    };
    let conn = tls.get_ref().1;
    let version = conn
        .protocol_version()
        .map_or_else(|| "?".to_owned(), |v| format!("{v:?}"));
    let suite = conn
        .negotiated_cipher_suite()
        .map_or_else(|| "?".to_owned(), |s| format!("{:?}", s.suite()));
    let group = conn
        .negotiated_key_exchange_group()
        .map_or_else(|| "?".to_owned(), |g| format!("{:?}", g.name()));
    format!("{version}/{suite}/{group}")
}

pub async fn run(args: IdleArgs) -> anyhow::Result<()> {
    let t = &args.target;
    if t.users == 0 || t.concurrency == 0 {
        bail!("--users and --concurrency must be at least 1");
    }
    let client = Arc::new(login::Client::new(t, Mechanism::Plain, t.users)?);
    if let Some(limit) = proc::open_files_limit()
        && limit < t.users as u64 + 64
    {
        eprintln!(
            "warning: open files limit is {limit}, below {} users; raise it with `ulimit -n`",
            t.users
        );
    }
    let pid = t.server_pid.map(|p| p.to_string());
    let server_rss = || pid.as_deref().and_then(|p| proc::status_kib(p, "VmRSS"));
    let before = server_rss();
    if let Some(p) = &pid
        && before.is_none()
    {
        bail!("cannot read /proc/{p}/status: is the server running on this machine?");
    }
    eprintln!(
        "idle: {} users over {} against {} (sources {:?}), {} at a time; server RSS before: {} KiB",
        t.users,
        t.transport.name(),
        t.server,
        client.sources(),
        t.concurrency,
        kib(before)
    );

    let stats = Arc::new(login::HoldStats::default());
    let mut holders = JoinSet::new();
    let mut logins: JoinSet<(Duration, anyhow::Result<Session>)> = JoinSet::new();
    let mut latencies = Vec::with_capacity(t.users);
    let mut failed = 0usize;
    // What the first session negotiated, e.g. `TLSv1_3/TLS13_AES_256_GCM_SHA384/X25519`.
    let mut tls = None;
    let started = Instant::now();
    let ramp_end = started + Duration::from_secs(args.ramp_timeout);
    let mut progress = tokio::time::interval(Duration::from_secs(5));
    progress.tick().await;
    let mut next = 0usize;
    loop {
        // The number of logins in flight is the concurrency bound.
        while next < t.users && logins.len() < t.concurrency {
            let client = client.clone();
            let (index, account) = (next, t.first_user + next);
            logins.spawn(async move {
                let start = Instant::now();
                let r = client.login(index, account).await;
                (start.elapsed(), r)
            });
            next += 1;
        }
        if logins.is_empty() {
            break;
        }
        tokio::select! {
            joined = logins.join_next() => match joined {
                Some(Ok((elapsed, Ok(session)))) => {
                    if tls.is_none() {
                        tls = Some(negotiated(&session));
                    }
                    latencies.push(elapsed);
                    holders.spawn(login::hold(session, stats.clone()));
                }
                Some(Ok((_, Err(e)))) => {
                    failed += 1;
                    if failed <= ERRORS_SHOWN {
                        eprintln!("login failed: {e:#}");
                    }
                }
                Some(Err(e)) => {
                    failed += 1;
                    eprintln!("login task failed: {e}");
                }
                None => break,
            },
            _ = sleep_until(ramp_end) => {
                let abandoned = logins.len() + (t.users - next);
                eprintln!("ramp timeout: abandoning {abandoned} logins");
                failed += abandoned;
                logins.abort_all();
                break;
            }
            _ = progress.tick() => eprintln!(
                "  {:>6.1}s established {} failed {} in flight {} server RSS {} KiB",
                started.elapsed().as_secs_f64(),
                latencies.len(),
                failed,
                logins.len(),
                kib(server_rss()),
            ),
        }
    }
    let ramp = started.elapsed();
    let established = latencies.len();
    eprintln!(
        "logins done in {:.1}s: {established} established, {failed} failed; settling {}s",
        ramp.as_secs_f64(),
        args.settle
    );

    sleep(Duration::from_secs(args.settle)).await;
    let after = server_rss();
    let hwm = pid.as_deref().and_then(|p| proc::status_kib(p, "VmHWM"));
    let gen_rss = proc::status_kib("self", "VmRSS");
    let alive = established.saturating_sub(stats.closed.load(Ordering::Relaxed));
    let per_session = match (before, after) {
        (Some(b), Some(a)) if alive > 0 => {
            format!("{:.2}", (a as f64 - b as f64) / alive as f64)
        }
        _ => "na".to_owned(),
    };
    eprintln!(
        "after {}s: {alive} sessions alive, server RSS {} KiB ({per_session} KiB/session); holding {}s",
        args.settle,
        kib(after),
        args.hold.saturating_sub(args.settle)
    );
    sleep(Duration::from_secs(args.hold.saturating_sub(args.settle))).await;
    let end = server_rss();
    let lost = stats.closed.load(Ordering::Relaxed);
    let pings = stats.pings.load(Ordering::Relaxed);

    latencies.sort_unstable();
    println!(
        "idle users={} transport={} established={established} failed={failed} lost={lost} \
         pings={pings} tls={} ramp_s={:.1} login_p50_ms={:.2} login_p99_ms={:.2} login_max_ms={:.2} \
         server_rss_before_kib={} server_rss_after_kib={} kib_per_session={per_session} \
         server_rss_end_kib={} server_hwm_kib={} gen_rss_kib={}",
        t.users,
        t.transport.name(),
        tls.as_deref().unwrap_or("none"),
        ramp.as_secs_f64(),
        stats::percentile_ms(&latencies, 50.0),
        stats::percentile_ms(&latencies, 99.0),
        stats::percentile_ms(&latencies, 100.0),
        kib(before),
        kib(after),
        kib(end),
        kib(hwm),
        kib(gen_rss),
    );

    holders.abort_all();
    if timeout(Duration::from_secs(10), async {
        while holders.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        eprintln!("some sessions did not stop in time");
    }
    if established == 0 {
        bail!("no session could be established");
    }
    Ok(())
}

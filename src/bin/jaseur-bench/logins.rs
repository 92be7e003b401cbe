//! The `login` scenario: login throughput.
use super::proc::{CpuMark, kib};
use super::*;

/// Problems printed in full; later ones are only counted.
const SHOWN: usize = 5;

/// What one pass over the accounts gave.
struct Pass {
    times: Vec<Duration>,
    failed: usize,
    /// Sessions whose stream the server did not close in answer to ours.
    unclean: usize,
    elapsed: Duration,
}

/// Log every account in and out `rounds` times, `concurrency` at a time.
async fn pass(
    client: &Arc<login::Client>,
    t: &TargetArgs,
    rounds: usize,
    ramp_timeout: Duration,
    what: &str,
) -> Pass {
    let total = t.users * rounds;
    let mut times = Vec::with_capacity(total);
    let (mut failed, mut unclean) = (0usize, 0usize);
    let mut tasks: JoinSet<anyhow::Result<login::Closed>> = JoinSet::new();
    let started = Instant::now();
    let ramp_end = started + ramp_timeout;
    let mut progress = tokio::time::interval(Duration::from_secs(5));
    progress.tick().await;
    let mut next = 0usize;
    loop {
        while next < total && tasks.len() < t.concurrency {
            let client = client.clone();
            let (index, account) = (next, t.first_user + next % t.users);
            tasks.spawn(async move { client.login_and_out(index, account).await });
            next += 1;
        }
        if tasks.is_empty() {
            break;
        }
        tokio::select! {
            joined = tasks.join_next() => match joined {
                Some(Ok(Ok(closed))) => {
                    times.push(closed.elapsed);
                    unclean += usize::from(!closed.clean);
                }
                Some(Ok(Err(e))) => {
                    failed += 1;
                    if failed <= SHOWN {
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
                let abandoned = tasks.len() + (total - next);
                eprintln!("{what}: ramp timeout, abandoning {abandoned} logins");
                failed += abandoned;
                tasks.abort_all();
                break;
            }
            _ = progress.tick() => eprintln!(
                "  {what} {:>6.1}s done {} failed {failed} in flight {}",
                started.elapsed().as_secs_f64(),
                times.len(),
                tasks.len(),
            ),
        }
    }
    Pass {
        times,
        failed,
        unclean,
        elapsed: started.elapsed(),
    }
}

pub async fn run(args: LoginArgs) -> anyhow::Result<()> {
    let t = &args.target;
    if t.users == 0 || t.concurrency == 0 || args.rounds == 0 {
        bail!("--users, --concurrency and --rounds must be at least 1");
    }
    let mechanism = t.mechanism.unwrap_or(Mechanism::ScramSha256);
    let warm_up = mechanism == Mechanism::ScramSha256 && !args.cold;
    let connections = t.users * (args.rounds + usize::from(warm_up));
    let client = Arc::new(login::Client::new(t, mechanism, connections)?);
    let pid = t.server_pid.map(|p| p.to_string());
    let server_rss = || pid.as_deref().and_then(|p| proc::status_kib(p, "VmRSS"));
    let rss_before = server_rss();
    if let Some(p) = &pid
        && rss_before.is_none()
    {
        bail!("cannot read /proc/{p}/status: is the server running on this machine?");
    }
    let ramp_timeout = Duration::from_secs(args.ramp_timeout);
    eprintln!(
        "login: {} users x {} rounds with {} over {} against {} (sources {:?}), {} at a time",
        t.users,
        args.rounds,
        mechanism.name(),
        t.transport.name(),
        t.server,
        client.sources(),
        t.concurrency
    );

    // SCRAM: one login per account first, so that the measured pass
    // finds every account's keys cached, as a returning client would.
    let mut warmup_s = 0.0;
    if warm_up {
        let warm = pass(&client, t, 1, ramp_timeout, "warm-up").await;
        warmup_s = warm.elapsed.as_secs_f64();
        eprintln!(
            "warm-up done in {warmup_s:.1}s: {} logins, {} failed, {} keys derived",
            warm.times.len(),
            warm.failed,
            client.derivations()
        );
        if warm.failed > 0 {
            bail!("{} warm-up logins failed", warm.failed);
        }
    }
    let derived_before = client.derivations();

    let cpu_before = CpuMark::now(pid.as_deref());
    let mut measured = pass(&client, t, args.rounds, ramp_timeout, "login").await;
    let cpu = cpu_before.until(&CpuMark::now(pid.as_deref()));
    let rss_after = server_rss();
    let hwm = pid.as_deref().and_then(|p| proc::status_kib(p, "VmHWM"));
    let derived = client.derivations() - derived_before;
    let ok = measured.times.len();
    measured.times.sort_unstable();
    let cache = match mechanism {
        Mechanism::Plain => "na",
        Mechanism::ScramSha256 if derived == 0 => "warm",
        Mechanism::ScramSha256 if derived >= ok => "cold",
        Mechanism::ScramSha256 => "partial",
    };
    let elapsed = measured.elapsed.as_secs_f64();
    println!(
        "login users={} rounds={} transport={} mechanism={} cache={cache} pbkdf2={derived} \
         concurrency={} logins={ok} failed={} unclean_close={} elapsed_s={elapsed:.2} \
         logins_per_s={:.0} login_p50_ms={:.2} login_p99_ms={:.2} login_max_ms={:.2} \
         server_cpu_pct={} gen_cpu_pct={} logins_per_server_cpu_s={} \
         server_rss_before_kib={} server_rss_after_kib={} server_hwm_kib={} \
         warmup_s={warmup_s:.1} gen_rss_kib={}",
        t.users,
        args.rounds,
        t.transport.name(),
        mechanism.name(),
        t.concurrency,
        measured.failed,
        measured.unclean,
        ok as f64 / elapsed.max(1e-9),
        stats::percentile_ms(&measured.times, 50.0),
        stats::percentile_ms(&measured.times, 99.0),
        stats::percentile_ms(&measured.times, 100.0),
        cpu.server_pct(),
        cpu.generator_pct(),
        cpu.per_server_cpu_s(ok as u64),
        kib(rss_before),
        kib(rss_after),
        kib(hwm),
        kib(proc::status_kib("self", "VmRSS")),
    );
    if measured.failed > 0 {
        bail!("{} logins failed", measured.failed);
    }
    Ok(())
}

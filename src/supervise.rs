//! Long-lived background services (the MUC services, directory search,
//! shared roster refresh, later the archive writer and S2S streams): owned by
//! the server's task tracker, so they stop with it, and kept alive through a
//! panic in the handling of one request.
//!
//! A service loop handles each request inside [`CatchUnwind`]: a panic there
//! (a bug reached by some client's input) is logged by the panic hook with
//! the service's span, the request is abandoned, and the service goes on
//! with the next one, instead of taking every room of a domain down with it.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// A future whose panics become `Err(())` (the panic hook has logged them).
///
/// Wraps a pinned reference, so that a loop can catch the panics of each
/// request's future without allocating: `CatchUnwind(pin!(fut)).await`.
pub struct CatchUnwind<F>(pub F);

impl<P> Future for CatchUnwind<Pin<P>>
where
    P: std::ops::DerefMut<Target: Future> + Unpin,
{
    type Output = Result<<P::Target as Future>::Output, ()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // The service's state may be half-updated after a panic; going on
        // with it is still better than losing every room and occupant: the
        // state is the service's own and is checked on every request.
        let inner = &mut self.get_mut().0;
        match catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

/// Run `service` as a tracked task named `name` (in its log lines).
pub fn spawn<F>(tasks: &TaskTracker, name: &str, service: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let span = tracing::info_span!("service", name = %name);
    tasks.spawn(service.instrument(span));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_in_one_request_leaves_the_loop_running() {
        let mut handled = Vec::new();
        for i in 0..3 {
            let request = async move {
                if i == 1 {
                    panic!("request {i} hit a bug");
                }
                i
            };
            let outcome = CatchUnwind(std::pin::pin!(request)).await;
            handled.push(outcome.ok());
        }
        assert_eq!(handled, vec![Some(0), None, Some(2)]);
    }
}
